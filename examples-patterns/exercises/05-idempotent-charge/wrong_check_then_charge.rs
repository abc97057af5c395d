// A plausible wrong solution of patterns/05: check, then charge, then record. Each step is
// right and the lock is held briefly, but between the check and the record another worker
// with the same order passes the same check: both charge. Retries one after another are
// handled, so it passes every test where a duplicate never arrives during a charge.

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
        if let Some(Entry::Charged(receipt)) = self.lock().get(&order) {
            return Ok(receipt.clone()); // already paid
        }
        // Not charged yet: charge it (without the lock: the call is slow), then remember it.
        let receipt = charge()?;
        self.lock().insert(order, Entry::Charged(receipt.clone()));
        Ok(receipt)
    }
}
