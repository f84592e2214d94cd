"""Synthetic terminal recordings for bench/recording_search.py: asciicast v2 files like those
PAM writes, from sessions an operator could have had on a fleet of Linux hosts.

Each recording is one session on one host: a coloured prompt, commands typed a key at a time
(now and then corrected with backspaces, echoed as bash echoes them), and what they print:
web and system logs, coloured ``ls -la`` listings, ``ps aux``, ``kubectl get pods``,
``systemctl status``, and full-screen programs (``top`` refreshing, ``less`` paging) drawn
with cursor moves. Hosts, addresses, paths, services and users come from pools the size of a
mid-sized fleet, with the variety real output has (timestamps, ids, sizes, durations, pids).
The strings the issue's examples search for (``/etc/shadow``, ``10.0.3.7``, ``--force``) and
one unique marker per recording are planted at random places.
"""

import json
import random
import string

SYLLABLES = ["ka", "lo", "mi", "ne", "to", "ra", "su", "vi", "de", "po", "an", "el", "or", "us", "ix", "qu", "ze", "ba"]
SERVICES = ["nginx", "postgresql", "redis-server", "sshd", "cron", "kubelet", "containerd", "haproxy", "node-exporter",
            "rsyslog", "systemd-journald", "docker", "etcd", "prometheus", "grafana-server", "vault", "consul"]
LEVELS = ["INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG"]
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]
AGENTS = ["curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64)", "python-requests/2.32.3", "Go-http-client/1.1",
          "kube-probe/1.31", "Prometheus/2.53.0"]


def _word(rng):
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))


class Fleet:
    """The pools every recording draws from (one per benchmark run, from its seed)."""

    def __init__(self, seed):
        rng = random.Random(seed)
        self.words = [_word(rng) for _ in range(4000)]
        self.hosts = [f"{rng.choice(['web', 'db', 'app', 'cache', 'k8s', 'mon'])}-{_word(rng)}-{n:02d}" for n in range(200)]
        self.addresses = [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(600)]
        self.users = [_word(rng) for _ in range(40)]
        self.endpoints = [f"/api/v{rng.randint(1, 3)}/{rng.choice(self.words)}/{rng.choice(self.words)}" for _ in range(300)]
        self.directories = [f"/{rng.choice(['etc', 'var/log', 'srv', 'opt', 'home'])}/{rng.choice(self.words)}" for _ in range(300)]
        self.messages = [" ".join(rng.choice(self.words) for _ in range(rng.randint(3, 8))) for _ in range(500)]
        self.namespaces = [rng.choice(self.words) for _ in range(20)]


class Session:
    """One recording being written: events as PAM's writer makes them."""

    def __init__(self, fleet, rng, target_size, marker):
        self.fleet, self.rng, self.marker = fleet, rng, marker
        self.host = rng.choice(fleet.hosts)
        self.user = rng.choice(fleet.users)
        self.time = 0.0
        self.lines = []
        self.size = 0
        self.target = target_size
        self.cwd = "~"

    def emit(self, kind, data, gap):
        self.time += gap
        line = json.dumps([round(self.time, 6), kind, data]) + "\n"
        self.lines.append(line)
        self.size += len(line)

    def out(self, text, gap=0.002):
        self.emit("o", text, gap)

    def prompt(self):
        self.out(f"\x1b]0;{self.user}@{self.host}: {self.cwd}\x07\x1b[01;32m{self.user}@{self.host}\x1b[00m:"
                 f"\x1b[01;34m{self.cwd}\x1b[00m$ ", 0.05)

    def type(self, command):
        rng = self.rng
        for key in command:
            if rng.random() < 0.02:  # a typo, erased as bash echoes a backspace
                self.out(rng.choice(string.ascii_lowercase), rng.uniform(0.05, 0.2))
                self.out("\b\x1b[K", rng.uniform(0.1, 0.3))
            self.out(key, rng.uniform(0.04, 0.25))
        self.emit("m", "", rng.uniform(0.1, 0.5))
        self.out("\r\n", 0.01)

    def stamp(self):
        rng = self.rng
        return f"2026-12-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randrange(1000):03d}Z"

    def address(self):
        return "10.0.3.7" if self.rng.random() < 0.0005 else self.rng.choice(self.fleet.addresses)

    def access_log(self, count):
        rng, fleet = self.rng, self.fleet
        lines = [
            f'{self.address()} - - [{self.stamp()}] "{rng.choice(METHODS)} {rng.choice(fleet.endpoints)}/{rng.randrange(10**6)} '
            f'HTTP/1.1" {rng.choice([200, 200, 200, 201, 204, 301, 404, 500])} {rng.randrange(50, 90000)} "-" '
            f'"{rng.choice(AGENTS)}" {rng.random():.3f}'
            for _ in range(count)
        ]
        self.block(lines)

    def syslog(self, count):
        rng, fleet = self.rng, self.fleet
        lines = [
            f"{self.stamp()} {self.host} {rng.choice(SERVICES)}[{rng.randrange(100, 65000)}]: {rng.choice(LEVELS)} "
            f"{rng.choice(fleet.messages)} peer={self.address()} id={rng.getrandbits(48):012x}"
            for _ in range(count)
        ]
        self.block(lines)

    def block(self, lines):
        for start in range(0, len(lines), 50):  # the target's writes arrive in pieces
            self.out("\r\n".join(lines[start:start + 50]) + "\r\n", self.rng.uniform(0.001, 0.05))

    def listing(self, directory):
        rng, fleet = self.rng, self.fleet
        lines = [f"total {rng.randrange(4, 900)}"]
        for _ in range(rng.randint(8, 60)):
            name = rng.choice(fleet.words) + rng.choice(["", ".conf", ".log", ".d", ".yaml", ".sh", ".service"])
            is_dir = name.endswith(".d") or rng.random() < 0.2
            shown = f"\x1b[01;34m{name}\x1b[0m" if is_dir else (f"\x1b[01;32m{name}\x1b[0m" if name.endswith(".sh") else name)
            lines.append(f"{'d' if is_dir else '-'}rw-r--r-- 1 {rng.choice(fleet.users)} {rng.choice(fleet.users)} "
                         f"{rng.randrange(10**6):>8} Dec {rng.randint(1, 28):>2} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} {shown}")
        self.block(lines)

    def processes(self):
        rng = self.rng
        lines = ["USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND"]
        for _ in range(rng.randint(20, 120)):
            service = rng.choice(SERVICES)
            lines.append(f"{rng.choice(['root', service]):<10} {rng.randrange(1, 65000):>6} {rng.random() * 20:>4.1f} "
                         f"{rng.random() * 10:>4.1f} {rng.randrange(10**7):>7} {rng.randrange(10**6):>6} ?        Ss   "
                         f"Dec0{rng.randint(1, 4)}   {rng.randint(0, 99)}:{rng.randint(0, 59):02d} /usr/sbin/{service} "
                         f"--config /etc/{service}/{rng.choice(self.fleet.words)}.conf")
        self.block(lines)

    def pods(self):
        rng, fleet = self.rng, self.fleet
        lines = ["NAME                                READY   STATUS    RESTARTS   AGE"]
        for _ in range(rng.randint(5, 40)):
            lines.append(f"{rng.choice(fleet.words)}-{rng.getrandbits(32):08x}-{rng.getrandbits(20):05x}   1/1     "
                         f"{rng.choice(['Running', 'Running', 'Pending', 'CrashLoopBackOff'])}   {rng.randint(0, 9)}          "
                         f"{rng.randint(1, 90)}d")
        self.block(lines)

    def full_screen(self, frames):
        rng = self.rng
        self.out("\x1b[?1049h\x1b[22;0;0t\x1b[1;24r\x1b(B\x1b[m\x1b[4l\x1b[?7h\x1b[H\x1b[2J", 0.05)
        for _ in range(frames):
            rows = [f"\x1b[1;1Htop - {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} up "
                    f"{rng.randint(1, 300)} days, load average: {rng.random():.2f}, {rng.random():.2f}\x1b[K"]
            for row in range(7, 24):
                service = rng.choice(SERVICES)
                rows.append(f"\x1b[{row};1H{rng.randrange(1, 65000):>7} {rng.choice(['root', service]):<9} 20   0 "
                            f"{rng.randrange(10**6):>7} {rng.randrange(10**5):>6} S {rng.random() * 30:>5.1f} "
                            f"{rng.random() * 5:>4.1f} {service}\x1b[K")
            self.out("".join(rows), rng.uniform(1.0, 3.0))
        self.out("\x1b[?1049l\x1b[23;0;0t\r", 0.1)

    def run(self):
        rng, fleet = self.rng, self.fleet
        plant_at = rng.randint(0, 5)  # the marker's command, among the first ones
        commands = 0
        while self.size < self.target:
            self.prompt()
            kind = rng.random()
            commands += 1
            if commands - 1 == plant_at:
                self.type(f"echo {self.marker}")
                self.out(f"{self.marker}\r\n")
            elif kind < 0.25:
                path = rng.choice(fleet.directories)
                self.type(f"tail -n 400 {path}/access.log")
                self.access_log(rng.randint(50, 400))
            elif kind < 0.45:
                self.type(f"journalctl -u {rng.choice(SERVICES)} --since today")
                self.syslog(rng.randint(50, 400))
            elif kind < 0.6:
                directory = rng.choice(fleet.directories)
                self.type(f"ls -la --color=auto {directory}")
                self.listing(directory)
            elif kind < 0.7:
                self.type(f"ps aux | grep {rng.choice(SERVICES)}")
                self.processes()
            elif kind < 0.78:
                self.type(f"kubectl get pods -n {rng.choice(fleet.namespaces)}")
                self.pods()
            elif kind < 0.85:
                self.type("top")
                self.full_screen(rng.randint(2, 8))
            elif kind < 0.9:
                self.type("sudo cat /etc/shadow" if rng.random() < 0.1 else f"cat /etc/{rng.choice(fleet.words)}.conf")
                self.out("cat: permission denied\r\n")
            elif kind < 0.95:
                flag = "--force" if rng.random() < 0.1 else "--dry-run"
                self.type(f"kubectl delete pod {rng.choice(fleet.words)}-{rng.getrandbits(32):08x} {flag}")
                self.out(f'pod "{rng.choice(fleet.words)}" deleted\r\n')
            else:
                self.type(f"cd {rng.choice(fleet.directories)}")
        self.prompt()
        self.type("exit")
        self.out("logout\r\n")
        return self


def recording(fleet, index, seed, target_size):
    """The text of recording ``index`` (its asciicast file) and its unique marker."""
    rng = random.Random(seed * 1_000_003 + index)
    marker = f"marker-{seed}-{index:05d}-{rng.getrandbits(32):08x}"
    session = Session(fleet, rng, target_size, marker).run()
    header = json.dumps({"version": 2, "width": 120, "height": 40, "timestamp": 1796000000 + index * 3600,
                         "title": f"ssh {session.user}@{session.host}:22", "env": {"TERM": "xterm-256color"}})
    return header + "\n" + "".join(session.lines), marker, session.time
