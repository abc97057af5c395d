// Reference solution of sync/01 (see exercise.rs for the statement).

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
            // One account, one lock: taking it twice on this thread would never return.
            let _same = lock(from);
            return;
        }
        // Every thread (and `total`) locks the lower index first: no cycle can form.
        let first = lock(from.min(to));
        let second = lock(from.max(to));
        let (mut source, mut destination) = if from < to {
            (first, second)
        } else {
            (second, first)
        };
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
