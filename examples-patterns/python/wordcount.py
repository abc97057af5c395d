#!/usr/bin/env python3
"""The course's map-reduce recipe (8.4): a word count with multiprocessing.Pool and Counter.

Each file is cut into chunks that end on whitespace (a word cut in two would count as two wrong
words); a pool of worker processes counts every chunk into a Counter (map), and the parent adds
the Counters up as they come back (reduce). Words follow `data.decode('utf-8', 'replace').lower()
.split()`, the definition `map-reduce` uses too, so both print the same counts.

Usage: wordcount.py FILE... [--workers N] [--chunks-per-worker K]
Prints one JSON line: {"words", "distinct", "top": [word, count], "workers", "seconds"}.
`map-reduce --python` runs it on the same files and compares.
"""
import argparse
import json
import os
import time
from collections import Counter
from multiprocessing import Pool

# The ASCII bytes str.split() splits on: a chunk may end on any of them.
SEPARATORS = b" \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"


def count_chunk(job):
    """Map: the words of one byte range of one file."""
    path, start, end = job
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    return Counter(data.decode("utf-8", "replace").lower().split())


def next_boundary(f, pos, size):
    """The first offset at or after `pos` that holds a separator (or the end of the file)."""
    f.seek(pos)
    while pos < size:
        block = f.read(64 * 1024)
        for i, b in enumerate(block):
            if b in SEPARATORS:
                return pos + i
        pos += len(block)
    return size


def chunks(path, count):
    """About `count` byte ranges of `path`, each ending on a separator."""
    size = os.path.getsize(path)
    step = max(1, size // count)
    jobs, start = [], 0
    with open(path, "rb") as f:
        while start < size:
            end = next_boundary(f, min(size, start + step), size)
            jobs.append((path, start, end))
            start = end
    return jobs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--chunks-per-worker", type=int, default=8)
    args = parser.parse_args()

    t0 = time.perf_counter()
    jobs = [j for path in args.files for j in chunks(path, args.workers * args.chunks_per_worker)]
    total = Counter()
    with Pool(args.workers) as pool:
        # Reduce as results arrive: the parent adds while the workers are still counting.
        for counts in pool.imap_unordered(count_chunk, jobs):
            total.update(counts)
    seconds = time.perf_counter() - t0

    top = total.most_common(1)[0] if total else ("", 0)
    print(json.dumps({"words": sum(total.values()), "distinct": len(total), "top": top,
                      "workers": args.workers, "seconds": round(seconds, 4)}))


if __name__ == "__main__":
    main()
