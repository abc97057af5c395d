// Checks of patterns/05, compiled against the learner's file, the solution and each wrong one.

use shared::exercise::{Check, Jitter, Progress, ensure, exactly_once, stress, watchdog};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The payment provider: slow, sometimes "try again", and it keeps the truth: every charge.
struct Gateway {
    seed: u64,
    charges: Mutex<Vec<u64>>,
    attempts: Mutex<HashMap<u64, u32>>,
    next_receipt: AtomicU64,
}

impl Gateway {
    /// Attempt n of `order`: the first may fail (1 in 4) or crash the worker (1 in 6), decided
    /// by the seed; later attempts go through.
    fn charge(&self, order: u64, jitter: &mut Jitter) -> Result<Receipt, ChargeError> {
        let attempt = {
            let mut a = self.attempts.lock().expect("attempts");
            let n = a.entry(order).or_insert(0);
            *n += 1;
            *n
        };
        let mut coin = Jitter::new(self.seed ^ order.rotate_left(17), u64::from(attempt));
        jitter.pause();
        std::thread::sleep(Duration::from_micros(20 + jitter.below(60))); // the network
        if attempt == 1 {
            match coin.below(12) {
                0 | 1 => panic!("simulated crash while charging order {order}"),
                2..=4 => return Err(ChargeError("503 try again".into())),
                _ => {}
            }
        }
        self.charges.lock().expect("charges").push(order);
        Ok(Receipt(self.next_receipt.fetch_add(1, Ordering::Relaxed)))
    }
}

/// The panic of a `todo!()`: the exercise is not done yet (not a crash to retry).
fn unsolved(payload: &(dyn std::any::Any + Send)) -> bool {
    shared::report::panic_message(payload).starts_with("not yet implemented")
}

fn one_run(seed: u64, progress: &Progress) -> Check {
    let (orders, copies, workers) = (40u64, 3, 4);
    let gateway = Arc::new(Gateway {
        seed,
        charges: Mutex::default(),
        attempts: Mutex::default(),
        next_receipt: AtomicU64::new(1),
    });
    let ledger = Arc::new(Ledger::default());
    // At-least-once delivery: every order three times in a row, so duplicates meet.
    let (tx, rx) = crossbeam_channel::unbounded();
    for order in 0..orders {
        for _ in 0..copies {
            tx.send(order).expect("open");
        }
    }
    drop(tx);
    let receipts: Vec<(u64, Receipt)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (rx, gateway, ledger) = (rx.clone(), Arc::clone(&gateway), Arc::clone(&ledger));
                std::thread::Builder::new()
                    .name(format!("worker-{w}"))
                    .spawn_scoped(s, move || {
                        let mut j = Jitter::new(seed, 1 + w);
                        let mut got = Vec::new();
                        for order in rx {
                            // Retry until paid: a failed or crashed attempt is tried again.
                            for _ in 0..20 {
                                let attempt =
                                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                        ledger.charge_once(order, || gateway.charge(order, &mut j))
                                    }));
                                match attempt {
                                    Ok(Ok(receipt)) => {
                                        got.push((order, receipt));
                                        break;
                                    }
                                    Ok(Err(_)) => {} // "try again": the next attempt
                                    // A crash: retried, unless it is the skeleton's `todo!()`.
                                    Err(p) if unsolved(p.as_ref()) => std::panic::resume_unwind(p),
                                    Err(_) => {}
                                }
                            }
                            progress.tick();
                        }
                        got
                    })
                    .expect("spawn a worker")
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let charges = gateway.charges.lock().expect("charges").clone();
    exactly_once(0..orders, charges).map_err(|mut f| {
        f.property = "every order charged exactly once".into();
        f.detail = format!("at the gateway: {}", f.detail);
        f
    })?;
    ensure(
        receipts.len() as u64 == orders * copies as u64,
        "every delivery gets its receipt",
        || {
            format!(
                "{} of {} deliveries ended with a receipt",
                receipts.len(),
                orders * copies as u64
            )
        },
    )?;
    let mut first: HashMap<u64, &Receipt> = HashMap::new();
    for (order, r) in &receipts {
        let seen = first.entry(*order).or_insert(r);
        ensure(*seen == r, "one receipt per order", || {
            format!("order {order} got receipts {seen:?} and {r:?}")
        })?;
    }
    Ok(())
}

pub fn all() -> Check {
    watchdog("idempotent-charge", Duration::from_secs(3), |progress| {
        stress(30, |seed| one_run(seed, progress))
    })
}
