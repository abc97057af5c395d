// A plausible wrong solution of sync/01: the natural order, source then destination. Correct
// for one transfer at a time, and in most runs; two transfers in opposite directions (A->B and
// B->A) can each take their first lock, then wait forever for the other's. It passes any test
// where the two never overlap at the wrong moment, which is why deadlocks survive testing.

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

    pub fn transfer(&self, from: usize, to: usize, amount: i64) {
        let lock = |i: usize| self.accounts[i].lock().unwrap_or_else(|e| e.into_inner());
        if from == to {
            return;
        }
        let mut source = lock(from);
        let mut destination = lock(to);
        *source -= amount;
        *destination += amount;
    }

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
