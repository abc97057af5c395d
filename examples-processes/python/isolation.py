#!/usr/bin/env python3
"""What a crash takes down in Python (8.1): a multiprocessing.Process versus a threading.Thread.

The Python side of `isolation`, fault by fault: an uncaught exception (Rust's panic), os.abort(),
unbounded recursion (a stack overflow in Rust), SIGKILL, and sys.exit(3). Each runs in a worker
process (the parent reads its exitcode) and in a thread; the thread is hosted by a child Python
process (this script with --fault F --in-thread), so that a fault that kills its process does
not kill this one.

`isolation --python` runs this and puts each fault's Rust and Python lines in one table:
    cargo run -p examples-processes --bin isolation -- --python
Two rows differ on purpose: recursion raises RecursionError in Python (an exception, caught in
a thread) where Rust overflows its stack and aborts; sys.exit() in a thread raises SystemExit in
that thread only, where Rust's std::process::exit ends the whole process.

Prints one JSON line: {"faults": [{"fault", "process", "process_contained", "thread",
"thread_survived"}]}.
"""
import argparse
import json
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import threading

FAULTS = ["panic", "abort", "stack-overflow", "killed", "exit"]
SURVIVED = "main thread carried on"


def recurse(depth):
    return recurse(depth + 1) + 1


def commit(fault):
    if fault == "panic":
        raise RuntimeError("worker bug: index out of range")
    if fault == "abort":
        os.abort()
    if fault == "stack-overflow":
        recurse(0)  # RecursionError after sys.getrecursionlimit() frames: an exception
    if fault == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "exit":
        sys.exit(3)  # raises SystemExit: in a thread, it ends only that thread


def commit_in_a_thread(fault):
    thread = threading.Thread(target=commit, args=(fault,), name="faulty")
    thread.start()
    thread.join()
    print(f"{SURVIVED}: join() returned", flush=True)


def describe(code):
    if code is None:
        return "did not end"
    if code < 0:
        return f"killed by signal {-code} ({signal.Signals(-code).name})"
    return f"exited with code {code}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fault", choices=FAULTS, help="(internal) commit this fault and exit")
    parser.add_argument("--in-thread", action="store_true", help="(internal) in a thread")
    args = parser.parse_args()
    # Deliberate aborts would only fill the disk with core files.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if args.fault:
        commit_in_a_thread(args.fault) if args.in_thread else commit(args.fault)
        return

    rows = []
    for fault in FAULTS:
        worker = multiprocessing.Process(target=commit, args=(fault,))
        worker.start()
        worker.join()
        host = subprocess.run([sys.executable, __file__, "--fault", fault, "--in-thread"],
                              capture_output=True, text=True)
        survived = SURVIVED in host.stdout
        thread = (f"caught, process carried on ({describe(host.returncode)})" if survived
                  else f"whole process died: {describe(host.returncode)}")
        rows.append({"fault": fault, "process": describe(worker.exitcode),
                     "process_contained": worker.exitcode not in (0, None),
                     "thread": thread, "thread_survived": survived})
    print(json.dumps({"faults": rows}))


if __name__ == "__main__":
    main()
