// A plausible wrong solution of patterns/05: the reservation is right, but a failed charge
// returns with `?` and leaves the order "in progress" for ever: its retry, and every duplicate,
// wait for an outcome that never comes. It passes whenever no charge fails.

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
        let receipt = charge()?; // (wrong: a failure returns here, the order stays InProgress)
        self.lock().insert(order, Entry::Charged(receipt.clone()));
        self.changed.notify_all();
        Ok(receipt)
    }
}
