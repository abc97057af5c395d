#!/usr/bin/env python3
"""A circuit breaker in asyncio: closed -> open -> half-open -> closed, the way the course's
"Circuit Breaker" pattern is written in Python, with the Rust example's exact rules.

Course section 8.4, "Circuit Breaker". The Rust twin,
`cargo run -p examples-patterns --bin circuit-breaker -- --python`, writes a seeded script of
calls (each one starts, then succeeds, fails or is cancelled) and replays it through both
breakers on a fake clock: the same script must give the same decisions (which calls are let
through) and the same transitions, at the same milliseconds. Standalone:

    python3 examples-patterns/python/circuit_breaker.py script.json --threshold 5 --window-ms 1000

The rules: closed counts failures in a sliding window and opens at `threshold`; open rejects
every call for `cool_down`; the first call after it moves to half-open, where at most `probes`
calls run at once; `probes` successes close, one failure reopens. A cancelled call frees its
probe slot (`finally`), or the breaker could stay half-open for ever. `call()` below is the
asyncio API a service client would use; the replay drives `try_acquire()` / `Permit` directly.

Prints one JSON object on its last line: the decisions, the transitions, and counts.
"""
import argparse
import asyncio
import json
import time
from collections import deque


class Rejected(Exception):
    """The breaker is open (or every probe slot is taken): the service was not called."""


class CircuitBreaker:
    def __init__(self, threshold, window, cool_down, probes, clock=time.monotonic):
        """`window` and `cool_down` in the clock's unit (seconds for time.monotonic)."""
        self.threshold, self.window, self.cool_down, self.probes = (threshold, window,
                                                                    cool_down, probes)
        self.clock = clock
        self.created = clock()
        self.state, self.failures, self.opened_at = "closed", deque(), self.created
        self.probes_in_flight = self.probe_successes = 0
        self.transitions = []

    def _move(self, to, reason):
        self.transitions.append((self.clock() - self.created, self.state, to, reason))
        self.state = to
        if to == "open":
            self.opened_at = self.clock()
        elif to == "half-open":
            self.probes_in_flight = self.probe_successes = 0
        else:
            self.failures.clear()

    def try_acquire(self):
        """A Permit to call the service once, or None: fail fast."""
        if self.state == "open" and self.clock() - self.opened_at >= self.cool_down:
            self._move("half-open", "cool-down over")
        if self.state == "open":
            return None
        if self.state == "half-open":
            if self.probes_in_flight >= self.probes:
                return None
            self.probes_in_flight += 1
            return Permit(self, probe=True)
        return Permit(self, probe=False)

    def _record(self, probe, success):
        if probe and self.state == "half-open":
            self.probes_in_flight -= 1
        if success is None:
            return  # cancelled: says nothing about the service
        if self.state == "closed" and not success:
            now = self.clock()
            self.failures.append(now)
            while self.failures and now - self.failures[0] > self.window:
                self.failures.popleft()
            if len(self.failures) >= self.threshold:
                self._move("open", f"{len(self.failures)} failures within the window")
        elif self.state == "half-open" and probe:
            if not success:
                self._move("open", "a probe failed")
            else:
                self.probe_successes += 1
                if self.probe_successes >= self.probes:
                    self._move("closed", f"{self.probe_successes} probes succeeded")

    async def call(self, fn, *args):
        """Runs `await fn(*args)` through the breaker; raises Rejected when open."""
        permit = self.try_acquire()
        if permit is None:
            raise Rejected()
        outcome = None
        try:
            result = await fn(*args)
            outcome = True
            return result
        except asyncio.CancelledError:
            raise  # outcome stays None: the slot is freed below, nothing is counted
        except Exception:
            outcome = False
            raise
        finally:
            permit.record(outcome)


class Permit:
    def __init__(self, breaker, probe):
        self.breaker, self.probe, self.done = breaker, probe, False

    def record(self, success):
        """True/False: the call's outcome; None: cancelled (frees a probe slot only)."""
        if not self.done:
            self.done = True
            self.breaker._record(self.probe, success)


def replay(script, args):
    """Drives the breaker through the script's operations on a fake clock that counts whole
    milliseconds (integers: a window's edge compares exactly, as Rust's Durations do)."""
    now = [0]
    breaker = CircuitBreaker(args.threshold, args.window_ms, args.cool_down_ms, args.probes,
                             clock=lambda: now[0])
    permits, granted = {}, []
    for op in script:
        now[0] = op["at_ms"]
        if op["op"] == "start":
            permit = breaker.try_acquire()
            granted.append(permit is not None)
            if permit is not None:
                permits[op["call"]] = permit
        elif op["call"] in permits:
            outcome = {"ok": True, "fail": False, "cancel": None}[op["op"]]
            permits.pop(op["call"]).record(outcome)
    return breaker, granted


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script", help="JSON list of {at_ms, op: start|ok|fail|cancel, call}")
    parser.add_argument("--threshold", type=int, default=5)
    parser.add_argument("--window-ms", type=int, default=1000)
    parser.add_argument("--cool-down-ms", type=int, default=250)
    parser.add_argument("--probes", type=int, default=2)
    args = parser.parse_args()
    with open(args.script) as f:
        script = json.load(f)

    t0 = time.perf_counter()
    breaker, granted = replay(script, args)
    wall = time.perf_counter() - t0
    print(json.dumps({
        "calls": len(granted),
        "let_through": sum(granted),
        "rejected": len(granted) - sum(granted),
        "granted": "".join("1" if g else "0" for g in granted),
        "transitions": [[at, frm, to] for at, frm, to, _ in breaker.transitions],
        "final_state": breaker.state,
        "wall_s": wall,
    }))


if __name__ == "__main__":
    main()
