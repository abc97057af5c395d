#!/usr/bin/env python3
"""The course's asyncio + aiohttp downloader: the Python side of async-downloader.rs.

Every URL of JOBS is downloaded into OUT with at most CONCURRENCY downloads in flight
(`asyncio.Semaphore`), one `aiohttp.ClientSession` (one connection pool), a timeout per attempt,
retries with exponential backoff and full jitter on 5xx, 408, 429, resets, truncated bodies and
timeouts, and the same atomic files as the Rust version: the body goes to `.NAME.part`, then
`os.replace` gives it its final name, so a final name is always a complete file.

JOBS has one job per line: `URL` (saved under the last path segment) or `URL<TAB>NAME`, which is
how `async-downloader --python` hands over the names its own naming rule chose, so that both
write the same files, compared byte for byte afterwards:
    cargo run --release -p examples-async --bin async-downloader -- --python
Alone:
    python3 examples-async/python/async_downloader.py urls.txt out --concurrency 1000

Prints one JSON line: {"python", "aiohttp", "urls", "ok", "failed", "retries", "bytes",
"concurrency", "wall_s", "cpu_s", "failures"}.
"""
import argparse
import asyncio
import json
import os
import random
import sys
import time
from urllib.parse import urlsplit

import aiohttp


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


async def attempt(session, url, dest, temp):
    """One GET; raises Retryable when another attempt may help."""
    try:
        async with session.get(url) as response:
            if response.status >= 500 or response.status in (408, 429):
                raise Retryable(f"HTTP {response.status}")
            response.raise_for_status()  # other 4xx: permanent
            body = await response.read()  # ClientPayloadError if the body is cut short
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, asyncio.TimeoutError) as e:
        raise Retryable(f"{type(e).__name__}: {e}") from e
    # A short blocking write, the course's way (small files; aiofiles or to_thread for big ones).
    with open(temp, "wb") as f:
        f.write(body)
    os.replace(temp, dest)
    return len(body)


async def download(session, semaphore, job, retries, backoff, report):
    url, dest, temp = job
    async with semaphore:  # the slot is held until the download, retries included, is over
        for n in range(retries + 1):
            try:
                return await attempt(session, url, dest, temp)
            except Retryable as e:
                if n == retries:
                    report["failures"].append(f"{url}: {e}")
                    return None
                report["retries"] += 1
                await asyncio.sleep(random.uniform(0, min(2.0, backoff * 2 ** n)))
            except aiohttp.ClientResponseError as e:
                report["failures"].append(f"{url}: HTTP {e.status} (not retried)")
                return None


async def download_all(jobs, args, report):
    semaphore = asyncio.Semaphore(args.concurrency)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        return await asyncio.gather(*(
            download(session, semaphore, job, args.retries, args.backoff_ms / 1000, report)
            for job in jobs))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("jobs", help="one URL, or URL<TAB>NAME, per line")
    p.add_argument("out", help="folder for the files (created)")
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--timeout", type=float, default=2.0, help="seconds per attempt")
    p.add_argument("--retries", type=int, default=4)
    p.add_argument("--backoff-ms", type=float, default=100)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    jobs = read_jobs(args.jobs, args.out)
    report = {"retries": 0, "failures": []}
    cpu, started = time.process_time(), time.perf_counter()
    sizes = asyncio.run(download_all(jobs, args, report))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    saved = [s for s in sizes if s is not None]
    print(json.dumps({
        "python": sys.version.split()[0], "aiohttp": aiohttp.__version__,
        "urls": len(jobs), "ok": len(saved), "failed": len(jobs) - len(saved),
        "retries": report["retries"], "bytes": sum(saved), "concurrency": args.concurrency,
        "wall_s": wall, "cpu_s": cpu, "failures": report["failures"][:20],
    }))


if __name__ == "__main__":
    main()
