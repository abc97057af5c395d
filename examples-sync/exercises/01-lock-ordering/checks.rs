// Checks of sync/01: loom under `--cfg loom`, a stress run with an auditor and a watchdog
// otherwise.

#[cfg(not(loom))]
use shared::exercise::Check;

/// Loom: A->B and B->A at once, a transfer from B to itself and the auditor in between, under
/// every interleaving with at most 2 preemptions (each of the three bugs needs at most one). A
/// deadlock is a state where every thread is blocked: loom reports it.
#[cfg(loom)]
pub fn model() {
    use examples_sync::sync::{Arc, thread};
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let bank = Arc::new(Bank::new(&[100, 100]));
        let transfers: Vec<_> = [(0, 1, 10), (1, 0, 5)]
            .into_iter()
            .map(|(from, to, amount)| {
                let bank = Arc::clone(&bank);
                thread::spawn(move || bank.transfer(from, to, amount))
            })
            .collect();
        bank.transfer(1, 1, 7); // to itself: changes nothing, and must not block
        assert_eq!(
            bank.total(),
            200,
            "the auditor saw money in neither account"
        );
        for t in transfers {
            t.join().expect("transfer thread");
        }
        assert_eq!((bank.balance(0), bank.balance(1)), (95, 105), "balances");
    });
}

#[cfg(not(loom))]
pub fn all() -> Check {
    use shared::exercise::{Jitter, ensure, stress, watchdog};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// The auditor of the checks: like `Bank::total`, with pauses between the locks, so that a
    /// transfer caught half-way is seen.
    fn audit(bank: &Bank, jitter: &mut Jitter) -> i64 {
        let mut guards = Vec::with_capacity(bank.accounts.len());
        for account in &bank.accounts {
            guards.push(account.lock().unwrap_or_else(|e| e.into_inner()));
            jitter.pause();
        }
        guards.iter().map(|g| **g).sum()
    }

    watchdog("lock-ordering", Duration::from_secs(3), |progress| {
        stress(30, |seed| {
            let mut draw = Jitter::new(seed, 0);
            let accounts = 2 + draw.below(3) as usize;
            let threads = 2 + draw.below(3) as usize;
            let per_thread = 200;
            let initial = vec![1_000i64; accounts];
            // Each thread's transfers, drawn up front so the expected balances are known. The
            // first transfer of thread 0 goes from an account to itself.
            let plans: Vec<Vec<(usize, usize, i64)>> = (0..threads)
                .map(|t| {
                    let mut d = Jitter::new(seed, 1_000 + t as u64);
                    (0..per_thread)
                        .map(|i| {
                            let from = d.below(accounts as u64) as usize;
                            let to = if t == 0 && i == 0 {
                                from
                            } else {
                                d.below(accounts as u64) as usize
                            };
                            (from, to, 1 + d.below(100) as i64)
                        })
                        .collect()
                })
                .collect();
            let mut expected = initial.clone();
            for &(from, to, amount) in plans.iter().flatten() {
                expected[from] -= amount;
                expected[to] += amount;
            }
            let total: i64 = initial.iter().sum();

            let bank = Arc::new(Bank::new(&initial));
            let done = Arc::new(AtomicBool::new(false));
            let audit_result = std::thread::scope(|s| {
                let auditor = {
                    let (bank, done) = (Arc::clone(&bank), Arc::clone(&done));
                    s.spawn(move || {
                        let mut j = Jitter::new(seed, 999);
                        while !done.load(Ordering::Relaxed) {
                            let seen = audit(&bank, &mut j);
                            if seen != total {
                                return Err(seen);
                            }
                        }
                        Ok(())
                    })
                };
                let workers: Vec<_> = plans
                    .iter()
                    .enumerate()
                    .map(|(t, plan)| {
                        let bank = Arc::clone(&bank);
                        s.spawn(move || {
                            let mut j = Jitter::new(seed, 1 + t as u64);
                            for &(from, to, amount) in plan {
                                j.pause();
                                bank.transfer(from, to, amount);
                                progress.tick();
                            }
                        })
                    })
                    .collect();
                // Stop the auditor even if a transfer panicked (a `todo!()`), then re-raise it.
                let joined: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
                done.store(true, Ordering::Relaxed);
                let audit = auditor.join().expect("auditor thread");
                for j in joined {
                    if let Err(panic) = j {
                        std::panic::resume_unwind(panic);
                    }
                }
                audit
            });
            if let Err(seen) = audit_result {
                ensure(false, "an auditor always sees the whole amount", || {
                    format!(
                        "the auditor locked every account and counted {seen} instead of \
                         {total}: a transfer released one account before taking the other"
                    )
                })?;
            }
            let got: Vec<i64> = (0..accounts).map(|a| bank.balance(a)).collect();
            ensure(got == expected, "every transfer applied once", || {
                format!("balances {got:?}, expected {expected:?}")
            })
        })
    })
}
