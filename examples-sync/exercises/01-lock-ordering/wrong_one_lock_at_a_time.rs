// A plausible wrong solution of sync/01: "never hold two locks, then it cannot deadlock". True,
// and the debit and the credit are each safe; but between them the money is in neither
// account, and an auditor that locks everything in that instant sees a total that is short.
// The final balances are right, so a test that only checks them at the end passes.

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
        *lock(from) -= amount; // the guard is dropped at the end of the statement
        *lock(to) += amount;
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
