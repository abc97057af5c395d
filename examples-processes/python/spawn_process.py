#!/usr/bin/env python3
"""Starting and steering child processes in Python (8.1): the subprocess module, step by step.

The Python side of `spawn-process`, the same five steps on the same input:
1. arguments, environment, working directory and captured output (subprocess.run);
2. exit codes and signals (returncode is negative for a signal);
3. a child past its deadline killed and reaped (Popen.wait(timeout) then kill() and wait());
4. the pipeline `ls -A DIR | wc -l` (one Popen's stdout as the next one's stdin);
5. megabytes through `cat` and back without a deadlock (run(input=...), i.e. communicate()).

`spawn-process --python` runs this with its own settings and compares every step:
    cargo run -p examples-processes --bin spawn-process -- --python
Prints one JSON line: {"step1_code", "step2": [how each script ended], "step3": {"status",
"elapsed_s"}, "step4": count, "step5": {"bytes", "identical", "wall_s"}}, endings in the words of
the Rust example ("exited with code 3", "killed by signal 9 (SIGKILL)").
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

STEP2_SCRIPTS = ["exit 0", "exit 42", "kill -TERM $$", "kill -KILL $$"]
CHILD = """import os, sys
print("child pid", os.getpid(), "args", sys.argv[1:])
print("child: GREETING=" + os.environ.get("GREETING", "(unset)") + ", cwd=" + os.getcwd())
print("child: HOME is", "set" if "HOME" in os.environ else "cleared")
print("child: this line goes to stderr", file=sys.stderr)
sys.exit(3)
"""


def describe(returncode):
    if returncode < 0:
        return f"killed by signal {-returncode} ({signal.Signals(-returncode).name})"
    return f"exited with code {returncode}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout-ms", type=int, default=300)
    parser.add_argument("--dir", default="/")
    parser.add_argument("--stdin-mib", type=int, default=8)
    args = parser.parse_args()
    if args.timeout_ms < 1 or args.stdin_mib < 1:
        parser.error("--timeout-ms and --stdin-mib must be at least 1")

    # 1. A list of arguments, never shell=True: spaces and $(…) are just characters.
    env = {k: v for k, v in os.environ.items() if k != "HOME"}
    env["GREETING"] = "bonjour"
    step1 = subprocess.run([sys.executable, "-c", CHILD, "two words", "$(not expanded)"],
                           env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True)

    # 2. A non-zero exit is a result, not an exception (unless check=True).
    step2 = [describe(subprocess.run(["sh", "-c", s]).returncode) for s in STEP2_SCRIPTS]

    # 3. wait(timeout) raises TimeoutExpired and leaves the child running: kill, then wait.
    start = time.perf_counter()
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        sleeper.wait(timeout=args.timeout_ms / 1000)
    except subprocess.TimeoutExpired:
        sleeper.kill()
        sleeper.wait()  # reap: without it, a zombie
    step3 = {"status": describe(sleeper.returncode), "elapsed_s": time.perf_counter() - start}

    # 4. ls's stdout goes to wc; closing our copy lets wc see EOF when ls ends.
    ls = subprocess.Popen(["ls", "-A", args.dir], stdout=subprocess.PIPE)
    wc = subprocess.Popen(["wc", "-l"], stdin=ls.stdout, stdout=subprocess.PIPE)
    ls.stdout.close()
    counted = int(wc.communicate()[0])
    ls.wait()

    # 5. communicate() writes and reads at once (threads or poll): no deadlock at any size.
    data = bytes(i % 251 for i in range(256)) * (args.stdin_mib * 4096)
    start = time.perf_counter()
    echoed = subprocess.run(["cat"], input=data, capture_output=True).stdout
    wall = time.perf_counter() - start

    print(json.dumps({"step1_code": step1.returncode, "step2": step2, "step3": step3,
                      "step4": counted, "step5": {"bytes": len(echoed),
                                                  "identical": echoed == data, "wall_s": wall}}))


if __name__ == "__main__":
    main()
