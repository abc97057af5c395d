// A plausible wrong solution of sync/01: the lock order is right, but a transfer from an account
// to itself locks the same mutex twice on one thread. A std `Mutex` is not re-entrant: the
// second `lock()` waits for the first guard, which this very thread holds, forever (std only
// promises "deadlock or panic"). Only a transfer to the same account triggers it.

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
