#!/usr/bin/env python3
"""Daemon threads (8.1): what happens to a thread still running when the main thread ends.

A thread is non-daemon by default: when the main thread's code ends, the interpreter waits for
it (threading's shutdown joins every non-daemon thread), so its last ticks and its `finally`
still run. A daemon thread (Thread(daemon=True)) is not waited for: the process exits under
it, mid-sleep, and its `finally` never runs. Rust's threads are all "daemon" in this sense:
returning from `main` ends the process; to finish a thread, stop it and join it.

Each case runs in a child process (this file with --child), so that its end can be watched
from outside. `hello-threads --python` prints this beside the Rust cases (part 7):
    cargo run -p examples-threads --bin hello-threads -- --python
Alone:
    python3 daemon_threads.py                 # both cases, one JSON line
    python3 daemon_threads.py --child daemon  # one case, its own output

Prints one JSON line: {"python", "default": {"ticks", "ticks_after_main_returned",
"cleaned_up"}, "daemon": {...}, "wall_s"}.
"""
import argparse
import json
import platform
import subprocess
import sys
import threading
import time


def say(line):
    print(line, flush=True)  # flushed at once: the process may end right after it


def ticker(ticks, period):
    try:
        for n in range(1, ticks + 1):
            say(f"ticker: tick {n}")
            time.sleep(period)
    finally:
        say("ticker: cleaned up")  # files flushed, temporary files removed...


def child(kind, period, work):
    # The default thread ticks 5 times and is waited for; the daemon one would tick for 20 s.
    ticks = 5 if kind == "default" else 1000
    threading.Thread(target=ticker, args=(ticks, period), name="ticker",
                     daemon=(kind == "daemon")).start()
    time.sleep(work)
    say("main: returning")
    # The end of the main thread's code. Non-daemon threads: the interpreter waits for them.


def read_child_output(stdout):
    report = {"ticks": 0, "ticks_after_main_returned": 0, "cleaned_up": False}
    main_returned = False
    for line in stdout.splitlines():
        if ": tick " in line:
            report["ticks"] += 1
            report["ticks_after_main_returned"] += main_returned
        elif "cleaned up" in line:
            report["cleaned_up"] = True
        elif "main: returning" in line:
            main_returned = True
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=["default", "daemon"], help="run one case")
    parser.add_argument("--period", type=float, default=0.02, help="seconds between ticks")
    parser.add_argument("--work", type=float, default=0.05, help="seconds before main ends")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.period, args.work)
        return

    t0 = time.perf_counter()
    result = {"python": platform.python_version()}
    for kind in ("default", "daemon"):
        out = subprocess.run([sys.executable, __file__, "--child", kind,
                              "--period", str(args.period), "--work", str(args.work)],
                             capture_output=True, text=True, timeout=60, check=True)
        result[kind] = read_child_output(out.stdout)
    result["wall_s"] = round(time.perf_counter() - t0, 6)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
