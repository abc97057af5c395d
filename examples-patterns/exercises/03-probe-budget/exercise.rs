// Exercise patterns/03 — The breaker's half-open probe budget, cancellation included
//
// Concept: after its cool-down, an open circuit breaker lets a few trial calls ("probes")
// through to see whether the service is back: at most `probes` at a time. Each call holds a
// `Permit`; the breaker learns the outcome from it. In async Rust a caller can vanish
// mid-call (a timeout, a client that hangs up): its future is dropped, and `record` is never
// called. If the permit's probe slot is not freed then, the breaker stays half-open for ever,
// rejecting everything. `Drop` is where that is handled. See examples-patterns' circuit-breaker.
//
// Goal: finish `Breaker`: `try_acquire` (closed: let through; open: reject until the
// cool-down is over, then become half-open; half-open: let through at most `probes` calls at a
// time, each marked as a probe), the half-open arm of `record` (free the probe's slot; a success
// counts, `probes` successes close; a failure reopens), and `Drop for Permit` (a permit dropped
// without `record` frees its slot, counting no outcome). Results of calls let through before
// the breaker opened ("late results", not probes) must not touch the probe slots.
//
// Hint: the `probe` flag on the permit says whether it holds a slot. Keep every check and
// update of the state under the one lock, and never hold it across an `.await`.
//
// Checked by: scenarios on a paused tokio clock (deterministic): probes cancelled by a timeout
// must free their slots; never more than `probes` calls reach the service while half-open; a
// late result frees no slot; the full closed -> open -> half-open -> closed/open cycle.
// Run: cargo run -p shared --bin exercises -- check patterns/03

use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, PartialEq, Eq)]
pub enum CallError<E> {
    /// Rejected without calling the service.
    Rejected,
    Failed(E),
}

pub struct Breaker {
    /// Consecutive failures that open the breaker.
    threshold: u32,
    cool_down: Duration,
    /// Probes in flight at most while half-open, and successes needed to close.
    probes: u32,
    inner: Mutex<Inner>,
}

struct Inner {
    state: State,
    failures: u32,
    opened_at: Instant,
    probes_in_flight: u32,
    probe_successes: u32,
}

/// The right to call the service once.
pub struct Permit<'a> {
    breaker: &'a Breaker,
    /// This call holds one of the half-open probe slots.
    probe: bool,
    /// `record` was called.
    done: bool,
}

impl Breaker {
    pub fn new(threshold: u32, cool_down: Duration, probes: u32) -> Self {
        Breaker {
            threshold,
            cool_down,
            probes,
            inner: Mutex::new(Inner {
                state: State::Closed,
                failures: 0,
                opened_at: Instant::now(),
                probes_in_flight: 0,
                probe_successes: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> State {
        self.lock().state
    }

    fn open(&self, inner: &mut Inner) {
        inner.state = State::Open;
        inner.opened_at = Instant::now();
    }

    /// Asks to call the service: `None` means fail fast.
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        todo!(
            "closed: a permit; open: None until the cool-down is over, then half-open; half-open: a probe permit while fewer than `probes` are in flight"
        )
    }

    /// The outcome of a call: `Some(true)` success, `Some(false)` failure, `None` cancelled.
    fn record(&self, probe: bool, outcome: Option<bool>) {
        let mut inner = self.lock();
        match inner.state {
            State::Closed => match outcome {
                Some(false) => {
                    inner.failures += 1;
                    if inner.failures >= self.threshold {
                        self.open(&mut inner);
                    }
                }
                Some(true) => inner.failures = 0,
                None => {}
            },
            // A call let through before the breaker opened: it says nothing about now.
            State::Open => {}
            State::HalfOpen => {
                todo!(
                    "free the probe's slot (only if it is a probe); a success counts and `probes` successes close; a failure reopens"
                )
            }
        }
    }

    /// Runs `call` through the breaker.
    pub async fn call<T, E>(
        &self,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, CallError<E>> {
        let permit = self.try_acquire().ok_or(CallError::Rejected)?;
        let result = call.await; // dropped here if the caller gives up: then `record` never runs
        permit.record(result.is_ok());
        result.map_err(CallError::Failed)
    }
}

impl Permit<'_> {
    pub fn record(mut self, success: bool) {
        self.done = true;
        self.breaker.record(self.probe, Some(success));
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        todo!(
            "a permit dropped without `record` (the call was cancelled): tell the breaker, outcome unknown"
        )
    }
}
