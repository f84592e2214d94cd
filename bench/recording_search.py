"""Benchmark: index terminal recordings for substring search, then search them.

Run on demand, not part of the test suite, once per database:

    .venv/bin/python bench/recording_search.py [--recordings 2000] [--total-mib 1024]
    PAM_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/recording_search.py

It builds a throwaway installation (see harness.py) holding ``--recordings`` synthetic
recordings (bench/recording_corpus.py) of ``--total-mib`` in all, owned by 20 users, and:

1. indexes them with one worker (recordings.indexing, as the Celery task does): MiB of
   recordings per second;
2. runs the search of GET /api/recordings/search (recordings.search.find, first page of 50) as
   an admin over every recording: each recording's unique marker, the issue's examples
   (``/etc/shadow``, ``10.0.3.7``, ``--force``), substrings taken from random lines of the text
   and strings that occur nowhere: p50, p99 and max;
3. times the baseline on the same files in the same run: ``grep -c -i -F`` over all of them
   per query (LC_ALL=C), and grep's reading speed.

Targets (issue 10): indexing >= 20 MiB/s per worker; search p50 <= 50 ms and p99 <= 200 ms.
Exits 1 when a correctness check fails (a marker not found in its recording alone, an example
not found, a string that occurs nowhere found); a missed target is reported, not fatal.
"""

import argparse
import multiprocessing
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import timedelta

from harness import BenchFailure, machine_line, setup_django, table, throwaway

import recording_corpus

EXAMPLES = ["/etc/shadow", "10.0.3.7", "--force"]


def _write(job):
    path, index, seed, target = job
    text, marker, duration = recording_corpus.recording(FLEET, index, seed, target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return index, marker, duration, len(text.encode())


def _init(seed):
    global FLEET
    FLEET = recording_corpus.Fleet(seed)


def build(count, total_bytes, seed):
    """Write the recordings and their rows; return ``(recordings, markers)``."""
    from django.conf import settings
    from django.utils import timezone

    from recordings.models import Recording
    from sessions.models import Session
    from tests.factories import make_user

    owners = [make_user("operator") for _ in range(20)]
    start = timezone.now() - timedelta(days=30)
    jobs, plan = [], []
    for index in range(count):
        session_id = uuid.uuid4()
        started = start + timedelta(minutes=20 * index)
        name = f"{started:%Y/%m/%d}/{session_id}.cast"
        jobs.append((settings.RECORDINGS_DIR / name, index, seed, total_bytes // count))
        plan.append((session_id, name, started, owners[index % len(owners)]))
    with multiprocessing.Pool(os.cpu_count(), initializer=_init, initargs=(seed,)) as pool:
        written = sorted(pool.imap_unordered(_write, jobs, chunksize=8))
    sessions, recordings, markers = [], [], {}
    for (index, marker, duration, size), (session_id, name, started, owner) in zip(written, plan, strict=True):
        ended = started + timedelta(seconds=duration)
        sessions.append(Session(id=session_id, owner=owner, session_type="ssh", host=f"host-{index}", port=22,
                                username="ops", status="ended", created_at=started, started_at=started, ended_at=ended))
        recordings.append(Recording(name=name, session_id=session_id, size=size, started_at=started, ended_at=ended))
        markers[name] = marker
    Session.objects.bulk_create(sessions, batch_size=500)
    Recording.objects.bulk_create(recordings, batch_size=500)
    return list(Recording.objects.order_by("pk")), markers


def index_all(recordings):
    from recordings.indexing import index_recording

    started = time.perf_counter()
    failed = [r.name for r in recordings if index_recording(r.pk) != "INDEXED"]
    elapsed = time.perf_counter() - started
    if failed:
        raise BenchFailure(f"{len(failed)} recordings failed to index, first {failed[0]}")
    return elapsed


def sample_substrings(recordings, count, rng):
    from recordings.models import RecordingChunk

    picked = []
    for recording in rng.sample(recordings, count):
        chunk = rng.choice(list(RecordingChunk.objects.filter(recording=recording).values_list("text", flat=True)))
        line = rng.choice([line for line in chunk.split("\n") if len(line) > 30] or [chunk])
        start = rng.randrange(0, max(1, len(line) - 20))
        picked.append(line[start:start + rng.randint(6, 20)].strip() or line[:10])
    return [q for q in picked if len(q) >= 3]


def time_searches(queries, visible):
    from recordings.search import find

    times, results = [], {}
    for query in queries:
        started = time.perf_counter()
        hits, _ = find(query, visible, limit=50, everything=True)  # an auditor's or admin's search
        times.append(time.perf_counter() - started)
        results[query] = hits
    return times, results


def grep_times(paths, queries):
    env = {**os.environ, "LC_ALL": "C"}
    times = []
    for query in queries:
        started = time.perf_counter()
        subprocess.run(["grep", "-c", "-i", "-F", "--", query, *paths], env=env, stdout=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - started)
    return times


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recordings", type=int, default=2000)
    parser.add_argument("--total-mib", type=int, default=1024)
    parser.add_argument("--markers", type=int, default=100, help="unique markers searched for")
    parser.add_argument("--samples", type=int, default=100, help="substrings of the text searched for")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chunk-kib", type=int, help="text per chunk, to compare with the product's (indexing.CHUNK_CHARS)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with throwaway("recording-search") as env:
        setup_django()
        from accounts.models import User
        from recordings import indexing

        if args.chunk_kib:
            indexing.CHUNK_CHARS = args.chunk_kib * 1024
        from recordings.models import Recording
        from tests.factories import make_user

        print(machine_line(env["database"]) + f", chunks of {indexing.CHUNK_CHARS // 1024} KiB of text")
        started = time.perf_counter()
        recordings, markers = build(args.recordings, args.total_mib * 2**20, args.seed)
        total = sum(r.size for r in recordings)
        print(f"corpus: {len(recordings)} recordings, {total / 2**20:.0f} MiB, written in {time.perf_counter() - started:.0f} s")
        paths = [str(r.path) for r in recordings]

        started = time.perf_counter()
        subprocess.run(["grep", "-c", "-F", "--", "no such text anywhere", *paths], env={**os.environ, "LC_ALL": "C"},
                       stdout=subprocess.DEVNULL, check=False)
        grep_read = time.perf_counter() - started

        indexing = index_all(recordings)
        admin = make_user("admin")
        visible = Recording.objects.visible_to(User.objects.get(pk=admin.pk))

        marker_names = rng.sample(sorted(markers), min(args.markers, len(markers)))
        absent = [f"zq{rng.getrandbits(40):010x}xj" for _ in range(20)] + [f"10.0.3.{n}77" for n in range(5)]
        samples = sample_substrings(recordings, min(args.samples, len(recordings)), rng)
        queries = [markers[name] for name in marker_names] + EXAMPLES + samples + absent
        search_times, results = time_searches(queries, visible)
        baseline = grep_times(paths, queries[:: max(1, len(queries) // 20)])

        failures = []
        for name in marker_names:
            found = {hit.recording.name for hit in results[markers[name]]}
            if found != {name}:
                failures.append(f"marker of {name} found in {sorted(found)[:3]}")
        failures += [f"{q!r} not found" for q in EXAMPLES + samples if not results[q]]
        failures += [f"{q!r} found though it occurs nowhere" for q in absent if results[q]]

        mib = total / 2**20
        rate = mib / indexing
        p50, p99 = percentile(search_times, 0.5), percentile(search_times, 0.99)
        table(
            ["figure", "PAM", "grep baseline", "target", "met"],
            [
                ["indexing, MiB/s (one worker)", f"{rate:.1f}", f"{mib / grep_read:.0f} (reading)", ">= 20", "yes" if rate >= 20 else "NO"],
                ["search p50, ms", f"{p50 * 1000:.1f}", f"{percentile(baseline, 0.5) * 1000:.0f}", "<= 50", "yes" if p50 <= 0.05 else "NO"],
                ["search p99, ms", f"{p99 * 1000:.1f}", f"{max(baseline) * 1000:.0f}", "<= 200", "yes" if p99 <= 0.2 else "NO"],
                ["search max, ms", f"{max(search_times) * 1000:.1f}", "", "", ""],
            ],
            title=f"{len(queries)} queries ({len(marker_names)} markers, {len(EXAMPLES)} examples, {len(samples)} "
                  f"substrings, {len(absent)} absent); indexing took {indexing:.0f} s",
        )
        slowest = sorted(zip(search_times, queries, strict=True), reverse=True)[:5]
        print("slowest:", ", ".join(f"{q!r} {t * 1000:.0f} ms" for t, q in slowest))
        if failures:
            raise BenchFailure("; ".join(failures[:5]))


if __name__ == "__main__":
    try:
        main()
    except BenchFailure as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
