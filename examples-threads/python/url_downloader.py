#!/usr/bin/env python3
"""The course's threaded downloader (8.1, "télécharger plusieurs URLs en parallèle"):
`concurrent.futures.ThreadPoolExecutor` + `urllib.request`, the Python side of url-downloader.rs.

Every URL of JOBS is downloaded into OUT by WORKERS threads. The GIL is released while a thread
waits on the network, so threads suit I/O-bound work in Python too. Like the Rust version: a
timeout per request, retries with exponential backoff and jitter on timeouts, connection errors,
truncated bodies and 5xx (never on other 4xx), and atomic files: the body goes to `.NAME.part`,
then `os.replace` gives it its final name. Standard library only. (urllib opens a new connection
per request; the Rust client keeps one per worker alive.)

JOBS has one job per line: `URL` (saved under the last path segment) or `URL<TAB>NAME`, which is
how `url-downloader --python` hands over the names its own rule chose, so that both write the
same files, compared byte for byte afterwards:
    cargo run --release -p examples-threads --bin url-downloader -- --python
Alone:
    python3 examples-threads/python/url_downloader.py urls.txt out --workers 32

Prints one JSON line: {"python", "urls", "ok", "failed", "retries", "bytes", "workers",
"wall_s", "cpu_s", "failures"}.
"""
import argparse
import http.client
import json
import os
import random
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit


class Retryable(Exception):
    pass


def read_jobs(path, out):
    jobs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            url, _, name = line.partition("\t")
            name = name or os.path.basename(urlsplit(url).path) or "download"
            jobs.append((url, os.path.join(out, name), os.path.join(out, f".{name}.part")))
    return jobs


def attempt(url, dest, temp, timeout):
    """One GET; raises Retryable when another attempt may help, HTTPError when it cannot."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()  # IncompleteRead if the body is cut short
    except urllib.error.HTTPError as e:
        if e.code >= 500 or e.code in (408, 429):
            raise Retryable(f"HTTP {e.code}") from e
        raise
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError,
            socket.timeout) as e:
        raise Retryable(f"{type(e).__name__}: {e}") from e
    with open(temp, "wb") as f:
        f.write(body)
    os.replace(temp, dest)
    return len(body)


def download(job, args, report, lock):
    url, dest, temp = job
    for n in range(args.retries + 1):
        try:
            return attempt(url, dest, temp, args.timeout)
        except Retryable as e:
            if n == args.retries:
                with lock:
                    report["failures"].append(f"{url}: {e}")
                return None
            with lock:  # `+=` on shared state from several threads: under the lock
                report["retries"] += 1
            time.sleep(random.uniform(0, min(5.0, args.backoff_ms / 1000 * 2 ** n)))
        except urllib.error.HTTPError as e:
            with lock:
                report["failures"].append(f"{url}: HTTP {e.code} (not retried)")
            return None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("jobs", help="one URL, or URL<TAB>NAME, per line")
    p.add_argument("out", help="folder for the files (created)")
    p.add_argument("--workers", type=int, default=32)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    p.add_argument("--retries", type=int, default=3)
    p.add_argument("--backoff-ms", type=float, default=100)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    jobs = read_jobs(args.jobs, args.out)
    report, lock = {"retries": 0, "failures": []}, threading.Lock()
    cpu, started = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        sizes = list(pool.map(lambda job: download(job, args, report, lock), jobs))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    saved = [s for s in sizes if s is not None]
    print(json.dumps({
        "python": sys.version.split()[0], "urls": len(jobs), "ok": len(saved),
        "failed": len(jobs) - len(saved), "retries": report["retries"], "bytes": sum(saved),
        "workers": args.workers, "wall_s": wall, "cpu_s": cpu,
        "failures": report["failures"][:20],
    }))


if __name__ == "__main__":
    main()
