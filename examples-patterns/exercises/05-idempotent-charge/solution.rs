// Reference solution of patterns/05 (see exercise.rs for the statement).

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

/// Releases a reservation when dropped while still armed: the charge failed or panicked.
struct Reservation<'a> {
    ledger: &'a Ledger,
    order: u64,
    armed: bool,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.ledger.lock().remove(&self.order);
            self.ledger.changed.notify_all(); // a waiter may now try itself
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
                // Someone is charging it: wait for the outcome (in a loop: wake-ups can be
                // spurious, and the entry may be taken again before we run).
                Some(Entry::InProgress) => {
                    entries = self
                        .changed
                        .wait(entries)
                        .unwrap_or_else(|p| p.into_inner());
                }
                None => break,
            }
        }
        // Checked and reserved under one lock: no other worker can be between the two.
        entries.insert(order, Entry::InProgress);
        drop(entries); // never hold the lock across the slow call
        let mut reservation = Reservation {
            ledger: self,
            order,
            armed: true,
        };
        let result = charge(); // if this panics, `reservation` releases the order
        if let Ok(receipt) = &result {
            self.lock().insert(order, Entry::Charged(receipt.clone()));
            reservation.armed = false;
            self.changed.notify_all();
        }
        result // on Err, `reservation` drops here, armed: the order is free again
    }
}
