"""Benchmark: GET /api/connections (a poweruser's tree) and the address-book listings as data grows.

Run on demand, not part of the test suite:

    .venv/bin/python bench/connection_listing.py [--sizes 1000,5000,10000] [--runs 15]

It builds a throwaway installation (see harness.py): one poweruser owning up to 10,000
connections in 500 personal folders (nested up to two levels below the top), two tags each, one
in ten with a stored password; and an address book of up to 50 folders of 40 entries, visible
through 20 Django groups, three of which an operator belongs to. At each size it times the
listings through Django's test Client and through daphne over HTTP, counts their SQL queries
(which must not grow with the data) and measures the responses. Baselines from the same run:
GET /api/health through the same stack, and a bare ``values_list`` fetch of the same rows.

Exits 1 when a correctness check fails (a query count that grows, a wrong number of rows, a
non-200 answer, HTTP and test Client disagreeing); a missed time target is reported, not fatal.
"""

import argparse
import contextlib
import functools
import gc
import json
import random
import secrets
import sys

from harness import (
    BenchFailure,
    Breakdown,
    Daphne,
    LoadMonitor,
    machine_line,
    median,
    ms,
    p95,
    ratio,
    setup_django,
    size,
    table,
    throwaway,
    timed,
)

PROTOCOLS = [
    ("ssh", 60),
    ("rdp", 15),
    ("web", 10),
    ("sftp", 5),
    ("vnc", 5),
    ("telnet", 2),
    ("smb", 2),
    ("ftp", 1),
]
CUSTOM_PORTS = {"ssh": [2222, 8022], "sftp": [2222], "rdp": [3390], "vnc": [5901], "web": [8443, 8080]}
TAGS = [
    "prod", "staging", "dev", "qa", "dr", "db", "web", "cache", "queue", "lb", "dns", "mail", "backup",
    "monitoring", "k8s", "bastion", "windows", "linux", "network", "storage", "eu-west", "us-east",
    "ap-south", "pci", "hipaa", "legacy", "team-a", "team-b", "team-c", "oncall",
]  # fmt: skip
USERNAMES = ["root", "admin", "deploy", "ubuntu", "Administrator", "svc-backup", "ops"]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="1000,5000,10000", help="connection counts, ascending (default %(default)s)"
    )
    parser.add_argument(
        "--runs", type=int, default=15, help="timed requests per figure (default %(default)s)"
    )
    parser.add_argument("--warmups", type=int, default=2, help="untimed requests first (default %(default)s)")
    parser.add_argument("--folders", type=int, default=500, help="personal folders (default %(default)s)")
    parser.add_argument(
        "--book-folders", type=int, default=50, help="address-book folders at the largest size"
    )
    parser.add_argument(
        "--book-entries", type=int, default=40, help="entries per address-book folder at the largest size"
    )
    parser.add_argument(
        "--book-groups", type=int, default=20, help="Django groups the folders are shared with"
    )
    parser.add_argument("--target-ms", type=float, default=300, help="listing target at the largest size")
    parser.add_argument(
        "--breakdown-runs", type=int, default=5, help="instrumented listing requests per size (0: none)"
    )
    parser.add_argument("--no-http", action="store_true", help="skip the daphne (full-stack HTTP) figures")
    args = parser.parse_args(argv)
    args.sizes = sorted({int(n) for n in args.sizes.split(",") if n.strip()})
    if not args.sizes or args.sizes[0] < 1:
        parser.error("--sizes needs positive connection counts")
    if not 1 <= args.runs <= 1000 or not 0 <= args.warmups <= 100 or not 0 <= args.breakdown_runs <= 100:
        parser.error("--runs must be 1-1000, --warmups and --breakdown-runs 0-100")
    if args.book_groups < 3 or args.folders < 3:
        parser.error("--book-groups and --folders must be at least 3")
    return args


class Dataset:
    """The rows the benchmark grows: built with bulk_create, never through the API."""

    def __init__(self, args):
        from django.contrib.auth.models import Group

        from accounts.models import User
        from accounts.services.tokens import issue_user_token

        self.args = args
        self.rng = random.Random(20261123)
        password = secrets.token_urlsafe(16)
        self.poweruser = User.objects.create_user(
            "bench-power", "bench-power@example.com", password, role_id="poweruser"
        )
        self.operator = User.objects.create_user(
            "bench-operator", "bench-op@example.com", password, role_id="operator"
        )
        Group.objects.bulk_create(Group(name=f"bench-team-{i:02d}") for i in range(args.book_groups))
        self.groups = list(Group.objects.filter(name__startswith="bench-team-").order_by("name"))
        self.operator.groups.add(*self.groups[:3])
        self.power_token = issue_user_token(user=self.poweruser, name="bench", actor=self.poweruser)[1]
        self.operator_token = issue_user_token(user=self.operator, name="bench", actor=self.operator)[1]
        self.folders = self._personal_folders(args.folders)
        self.connections = 0
        self.book_folders = []
        self.book_entries = 0

    def _personal_folders(self, count):
        """``count`` folders: a fifth at the top, two fifths one level below, the rest two below."""
        from connections.models import ConnectionGroup

        top_count = max(1, count // 5)
        second_count = max(1, (count * 2) // 5)
        top = [
            ConnectionGroup(owner=self.poweruser, scope="", name=f"site-{i:03d}", sort_order=i)
            for i in range(top_count)
        ]
        second = [
            ConnectionGroup(
                owner=self.poweruser, scope="", name=f"env-{i:03d}", parent=top[i % top_count], sort_order=i
            )
            for i in range(second_count)
        ]
        third = [
            ConnectionGroup(
                owner=self.poweruser,
                scope="",
                name=f"role-{i:03d}",
                parent=second[i % second_count],
                sort_order=i,
            )
            for i in range(count - top_count - second_count)
        ]
        for level in (top, second, third):
            ConnectionGroup.objects.bulk_create(level, batch_size=500)
        return top + second + third

    def _connection(self, i, **fields):
        from connections.models import Connection

        rng = self.rng
        protocol = rng.choices([p for p, _ in PROTOCOLS], weights=[w for _, w in PROTOCOLS])[0]
        address = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        port = rng.choice(CUSTOM_PORTS[protocol]) if protocol in CUSTOM_PORTS and rng.random() < 0.3 else None
        host, url = address, ""
        if protocol == "web":
            host, url = "", f"https://{address}:{port or 443}/"
        return Connection(
            protocol=protocol,
            host=host,
            port=port,
            url=url,
            username=rng.choice(USERNAMES),
            display_name=f"{protocol.upper()} {address}" if rng.random() < 0.5 else "",
            password=secrets.token_urlsafe(18) if i % 10 == 0 else "",
            sort_order=i,
            **fields,
        )

    def _tag(self, connections):
        from connections.models import ConnectionTag

        ConnectionTag.objects.bulk_create(
            (
                ConnectionTag(connection=c, name=name)
                for c in connections
                for name in self.rng.sample(TAGS, 2)
            ),
            batch_size=1000,
        )

    def grow_connections(self, total):
        """Add the poweruser's connections up to ``total``, round-robin over their folders."""
        from connections.models import Connection

        new = [
            self._connection(
                i, owner=self.poweruser, group=self.folders[i % len(self.folders)], name=f"host-{i:05d}"
            )
            for i in range(self.connections, total)
        ]
        Connection.objects.bulk_create(new, batch_size=500)
        self._tag(new)
        self.connections = total

    def grow_address_book(self, folder_count, entries_per_folder):
        """Add address-book folders up to ``folder_count`` and fill each to ``entries_per_folder``."""
        from connections.models import Connection, ConnectionGroup, JumpHop

        new_folders = [
            ConnectionGroup(owner=None, scope="shared", name=f"team-{j:02d}", sort_order=j)
            for j in range(len(self.book_folders), folder_count)
        ]
        ConnectionGroup.objects.bulk_create(new_folders)
        through = ConnectionGroup.allowed_groups.through
        links = []
        for folder in new_folders:
            j = int(folder.name.split("-")[1])
            chosen = {self.groups[j % len(self.groups)], self.groups[(j + 7) % len(self.groups)]}
            if j % 3 == 0:
                chosen.add(self.rng.choice(self.groups))
            links += [through(connectiongroup_id=folder.pk, group_id=g.pk) for g in chosen]
        through.objects.bulk_create(links)
        self.book_folders += new_folders

        entries = [
            self._connection(k, owner=None, group=folder, name=f"{folder.name}-entry-{k:03d}")
            for folder in self.book_folders
            for k in range(Connection.objects.filter(group=folder).count(), entries_per_folder)
        ]
        Connection.objects.bulk_create(entries, batch_size=500)
        self._tag(entries)
        JumpHop.objects.bulk_create(
            JumpHop(connection=e, position=0, host=f"10.255.0.{self.rng.randrange(1, 255)}", username="jump")
            for e in entries[::4]
        )
        self.book_entries = entries_per_folder

    def visible_book_folders(self):
        from connections.models import ConnectionGroup

        return ConnectionGroup.objects.address_book_visible_to(self.operator).count()


# --- measuring ---------------------------------------------------------------------------


class Endpoint:
    """One GET request of the benchmark, and who sends it."""

    def __init__(self, path, token):
        from django.test import Client

        self.path, self.token = path, token
        extra = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        self.client = Client(HTTP_HOST="127.0.0.1", **extra)
        self.figure = {"client": [], "http": []}

    def get(self):
        response = self.client.get(self.path)
        if response.status_code != 200:
            raise BenchFailure(f"GET {self.path} answered {response.status_code}: {response.content[:300]!r}")
        return response.content

    def http_get(self, daphne):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        status, content = daphne.request("GET", self.path, headers=headers)
        if status != 200:
            raise BenchFailure(f"HTTP GET {self.path} answered {status}: {content[:300]!r}")
        return content


def raw_fetch(user):
    """Baseline: the same rows (tags included), straight from the ORM as tuples, no view around them."""
    from connections.api.representations import summary_rows
    from connections.models import Connection

    return list(summary_rows(Connection.objects.filter(owner=user)))


def measure_step(endpoints, user, args, daphne):
    """Time every endpoint round-robin, so baselines and listings share the machine's moods."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    raw = []
    bodies = {}
    gc.collect()
    for round_ in range(args.warmups + args.runs):
        keep = round_ >= args.warmups
        for key, endpoint in endpoints.items():
            elapsed, bodies[key] = timed(endpoint.get)
            if keep:
                endpoint.figure["client"].append(elapsed)
        elapsed, rows = timed(lambda: raw_fetch(user))
        if keep:
            raw.append(elapsed)
        if daphne:
            for key, endpoint in endpoints.items():
                elapsed, content = timed(functools.partial(endpoint.http_get, daphne))
                if keep:
                    endpoint.figure["http"].append(elapsed)
                if round_ == 0 and json.loads(content) != json.loads(bodies[key]):
                    raise BenchFailure(
                        f"GET {endpoint.path}: daphne and the test Client returned different bodies"
                    )
    figures = {}
    for key, endpoint in endpoints.items():
        with CaptureQueriesContext(connection) as captured:
            endpoint.get()
        figures[key] = {
            **endpoint.figure,
            "body": bodies[key],
            "queries": len(captured),
            "sql": [q["sql"] for q in captured],
        }
    return figures, raw, len(rows)


def check_constant(name, figures):
    counts = [f["queries"] for f in figures]
    if len(set(counts)) > 1:
        first, last = figures[0], figures[-1]
        extra = [q for q in last["sql"] if q not in first["sql"]][:5]
        raise BenchFailure(
            f"{name}: query count changed with the data: {counts}; queries not in the first size: {extra}"
        )


def run(args, env):
    print(f"connection_listing: {machine_line(env['database'])}")
    print(
        f"sizes {args.sizes}, {args.runs} timed rounds after {args.warmups} warm-ups, endpoints interleaved"
    )
    data = Dataset(args)
    largest = args.sizes[-1]
    steps = []
    failure = None
    with contextlib.ExitStack() as stack:
        daphne = None if args.no_http else stack.enter_context(Daphne(env["data_dir"]))
        try:
            for n in args.sizes:
                steps.append(run_step(n, largest, data, args, daphne))
            for key, name in (
                ("list", "GET /api/connections"),
                ("folders", "GET /api/addressbook/folders"),
                ("entries", "GET address-book entries"),
                ("health", "GET /api/health"),
            ):
                check_constant(name, [s[key] for s in steps])
        except BenchFailure as exc:
            failure = exc
    if steps:
        report(args, steps, daphne is not None)
    if failure:
        raise failure


def run_step(n, largest, data, args, daphne):
    from connections.models import ConnectionGroup

    fraction = n / largest
    book_folders = max(1, round(args.book_folders * fraction))
    book_entries = max(1, round(args.book_entries * fraction))
    build, _ = timed(lambda: (data.grow_connections(n), data.grow_address_book(book_folders, book_entries)))
    visible = data.visible_book_folders()
    first_visible = ConnectionGroup.objects.address_book_visible_to(data.operator).order_by("name").first()
    print(
        f"[{n:,} connections] built in {build:.1f} s; address book {book_folders} folders x "
        f"{book_entries} entries, {visible} visible to the operator; measuring...",
        flush=True,
    )
    endpoints = {
        "health": Endpoint("/api/health", None),
        "list": Endpoint("/api/connections", data.power_token),
        "folders": Endpoint("/api/addressbook/folders", data.operator_token),
        "entries": Endpoint(
            f"/api/addressbook/folders/shared/{first_visible.name}/entries", data.operator_token
        ),
    }
    figures, raw, raw_rows = measure_step(endpoints, data.poweruser, args, daphne)
    step = {
        "n": n,
        "book_folders": book_folders,
        "book_entries": book_entries,
        "visible": visible,
        "raw": raw,
        **figures,
    }
    if args.breakdown_runs:
        gc.collect()
        import orjson

        with Breakdown([(orjson, "dumps", "render")]) as breakdown:
            step["parts"] = breakdown.measure(endpoints["list"].get, args.breakdown_runs)
    groups, listed = tree_count(step["list"]["body"])
    if listed != n or groups != len(data.folders) or raw_rows != n:
        raise BenchFailure(
            f"the listing shows {listed} connections in {groups} folders and the raw fetch {raw_rows} rows; "
            f"expected {n} in {len(data.folders)}"
        )
    shown = len(json.loads(step["folders"]["body"]))
    if shown != visible:
        raise BenchFailure(f"the operator sees {shown} address-book folders, expected {visible}")
    shown = len(json.loads(step["entries"]["body"]))
    if shown != book_entries:
        raise BenchFailure(
            f"address-book folder {first_visible.name} lists {shown} entries, expected {book_entries}"
        )
    return step


def tree_count(body):
    tree = json.loads(body)
    listed = (
        sum(len(g["connections"]) for g in tree["groups"])
        + len(tree["ungrouped"])
        + len(tree["sharedConnections"])
    )
    return len(tree["groups"]), listed


def report(args, steps, http):
    def timing(f):
        return [ms(median(f["client"])), ms(p95(f["client"]))] + (
            [ms(median(f["http"])), ms(p95(f["http"]))] if http else ["-", "-"]
        )

    times = ["Client med ms", "Client p95 ms", "HTTP med ms", "HTTP p95 ms"]
    table(
        [
            "connections",
            "queries",
            "response",
            *times,
            "Client min ms",
            "raw fetch ms",
            "list/raw",
            "list/health",
            "HTTP list/health",
        ],
        [
            [
                f"{s['n']:,}",
                s["list"]["queries"],
                size(len(s["list"]["body"])),
                *timing(s["list"]),
                ms(min(s["list"]["client"])),
                ms(median(s["raw"])),
                ratio(median(s["list"]["client"]), median(s["raw"])),
                ratio(median(s["list"]["client"]), median(s["health"]["client"])),
                ratio(median(s["list"]["http"]), median(s["health"]["http"])) if http else "-",
            ]
            for s in steps
        ],
        title="GET /api/connections as the poweruser (list/raw and list/health: Client medians)",
    )
    table(
        ["connections", "queries", *times],
        [[f"{s['n']:,}", s["health"]["queries"], *timing(s["health"])] for s in steps],
        title="Baseline: GET /api/health (anonymous, SELECT 1), interleaved with the listings",
    )
    for key, title, count in (
        ("folders", "GET /api/addressbook/folders as the operator (member of 3 groups)", "visible"),
        (
            "entries",
            "GET /api/addressbook/folders/shared/<visible folder>/entries as the operator",
            "book_entries",
        ),
    ):
        table(
            ["folders x entries", "listed", "queries", "response", *times, "/health"],
            [
                [
                    f"{s['book_folders']} x {s['book_entries']}",
                    s[count],
                    s[key]["queries"],
                    size(len(s[key]["body"])),
                    *timing(s[key]),
                    ratio(median(s[key]["client"]), median(s["health"]["client"])),
                ]
                for s in steps
            ],
            title=title,
        )
    if all("parts" in s for s in steps):
        table(
            ["connections", "total ms", "SQL ms", "JSON render ms", "GC ms", "other Python ms"],
            [
                [
                    f"{s['n']:,}",
                    *(ms(median(s["parts"][k])) for k in ("total", "sql", "render", "gc", "other")),
                ]
                for s in steps
            ],
            title=(
                "Where GET /api/connections spends its time "
                f"(test Client, instrumented, median of {args.breakdown_runs})"
            ),
        )
        print(
            "  SQL = driver execute + fetch; other = auth, middleware, DRF, ORM row conversion,\n"
            "  the view's dict building"
        )
    last = steps[-1]
    print(
        f"\nTarget: GET /api/connections <= {args.target_ms:.0f} ms at {last['n']:,} connections, "
        "constant query count"
    )
    for label, key in (("test Client", "client"), ("HTTP (daphne)", "http")):
        if last["list"][key]:
            value = median(last["list"][key]) * 1000
            print(f"  {label:14} median {value:,.1f} ms: {'met' if value <= args.target_ms else 'MISSED'}")
    print(f"  query count {last['list']['queries']} at every size: met")


def main(argv=None):
    args = parse_args(argv)
    try:
        with throwaway("listing") as env:
            monitor = LoadMonitor()
            try:
                setup_django()
                run(args, env)
            finally:
                monitor.report()
    except BenchFailure as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
