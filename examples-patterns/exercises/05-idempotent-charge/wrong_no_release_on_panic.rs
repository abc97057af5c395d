// A plausible wrong solution of patterns/05: failures release the order, but a crash does not:
// when `charge` panics (a bug, a worker killed mid-call), the code that releases the
// reservation never runs, and the order stays "in progress" for ever: the retry after the crash
// waits for good. A guard whose `Drop` releases it runs during the unwinding too.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

/// The gateway's proof of a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt(pub u64);

/// A charge that did not happen (the gateway said "try again").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeError(pub String);

enum Entry {
    /// A worker is charging this order right now.
    InProgress,
    Charged(Receipt),
}

/// The idempotency store in front of the payment gateway: one entry per order.
pub struct Ledger {
    entries: Mutex<HashMap<u64, Entry>>,
    /// Notified whenever an entry leaves `InProgress`.
    changed: Condvar,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            entries: Mutex::new(HashMap::new()),
            changed: Condvar::new(),
        }
    }
}

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Charges `order` at most once, however many workers ask, at once or one after another.
    pub fn charge_once(
        &self,
        order: u64,
        charge: impl FnOnce() -> Result<Receipt, ChargeError>,
    ) -> Result<Receipt, ChargeError> {
        let mut entries = self.lock();
        loop {
            match entries.get(&order) {
                Some(Entry::Charged(receipt)) => return Ok(receipt.clone()),
                Some(Entry::InProgress) => {
                    entries = self
                        .changed
                        .wait(entries)
                        .unwrap_or_else(|p| p.into_inner());
                }
                None => break,
            }
        }
        entries.insert(order, Entry::InProgress);
        drop(entries);
        let result = charge(); // (wrong: a panic unwinds from here, past the release below)
        let mut entries = self.lock();
        match &result {
            Ok(receipt) => {
                entries.insert(order, Entry::Charged(receipt.clone()));
            }
            Err(_) => {
                entries.remove(&order);
            }
        }
        drop(entries);
        self.changed.notify_all();
        result
    }
}
