// A plausible wrong solution of patterns/03: every result that arrives while half-open frees a
// probe slot, including the late result of a call let through before the breaker opened (it
// never held one). The count drifts below the truth and one more probe than allowed reaches the
// service. It only shows when a slow call from the closed period ends during the probing.

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
        let mut inner = self.lock();
        if inner.state == State::Open && inner.opened_at.elapsed() >= self.cool_down {
            inner.state = State::HalfOpen;
            inner.probes_in_flight = 0;
            inner.probe_successes = 0;
        }
        let probe = match inner.state {
            State::Closed => false,
            State::Open => return None,
            State::HalfOpen if inner.probes_in_flight < self.probes => {
                inner.probes_in_flight += 1; // taken under the lock: no two calls get one slot
                true
            }
            State::HalfOpen => return None, // the budget is spent: fail fast
        };
        Some(Permit {
            breaker: self,
            probe,
            done: false,
        })
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
                // Any call that ends frees a slot (wrong: a call let through while closed never
                // took one; saturating, so the count cannot go below zero).
                inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
                match (probe, outcome) {
                    (true, Some(true)) => {
                        inner.probe_successes += 1;
                        if inner.probe_successes >= self.probes {
                            inner.state = State::Closed;
                            inner.failures = 0;
                        }
                    }
                    (true, Some(false)) => self.open(&mut inner),
                    // Cancelled (no information), or a late result of a call let through
                    // before the breaker opened: it never held a slot.
                    _ => {}
                }
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
        if !self.done {
            // Cancelled mid-call: free the slot, learn nothing about the service.
            self.breaker.record(self.probe, None);
        }
    }
}
