// Exercise sync/01 — Transfers without deadlock: one global lock order
//
// Concept: a transfer must hold both accounts' locks while it moves the money, so that nobody
// (an auditor summing every account) ever sees it in neither account. Taking "the source, then
// the destination" deadlocks as soon as two transfers go in opposite directions: each holds one
// lock and waits for the other's (the `deadlock` example stages it). Agree on one global order,
// the lower account index first, and the cycle cannot form: this removes the "circular wait"
// Coffman condition. Python's `with lock_a: with lock_b:` has exactly the same trap.
//
// Goal: finish `Bank::transfer(from, to, amount)`: move `amount` from `from` to `to`, holding
// both locks while the two balances change, in an order that cannot deadlock with other
// transfers nor with `total()` (which locks every account in index order). A transfer to the
// same account must work too (and change nothing).
//
// Hint: lock `from.min(to)` first, then `from.max(to)`, and keep the guards apart so you know
// which one is the source. When `from == to` there is only one lock: a std `Mutex` locked twice
// by the same thread never returns.
//
// Checked by: loom (every interleaving of two opposite transfers and an auditor, 2 preemptions),
// a stress run (many threads, random transfers, self-transfers, an auditor that must always see
// the same total, final balances exact) under a deadlock watchdog.
// Run: cargo run -p shared --bin exercises -- check sync/01

use examples_sync::sync::Mutex;

pub struct Bank {
    accounts: Vec<Mutex<i64>>,
}

impl Bank {
    pub fn new(balances: &[i64]) -> Self {
        Bank {
            accounts: balances.iter().map(|&b| Mutex::new(b)).collect(),
        }
    }

    /// Moves `amount` from account `from` to account `to`, atomically for anyone who locks.
    pub fn transfer(&self, from: usize, to: usize, amount: i64) {
        todo!("lock both accounts in index order (one lock if from == to), then move the money")
    }

    /// The auditor: locks every account in index order, and sums them.
    pub fn total(&self) -> i64 {
        let guards: Vec<_> = self
            .accounts
            .iter()
            .map(|a| a.lock().unwrap_or_else(|e| e.into_inner()))
            .collect();
        guards.iter().map(|g| **g).sum()
    }

    pub fn balance(&self, account: usize) -> i64 {
        *self.accounts[account]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}
