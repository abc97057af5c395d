// A plausible wrong solution of patterns/06: no actor, the stock in an `Arc<Mutex<_>>` shared by
// the handles. `reserve` checks the stock first (why ask the price of what is sold out?), asks
// the price, then writes the stock back. A std `MutexGuard` cannot be held across the
// `.await` (the future would not be `Send`), so the lock is released in between: every
// customer that checks during those 20 ms sees the same units, and each takes them. With
// customers one at a time, everything is right.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryError {
    UnknownProduct(String),
    OutOfStock { wanted: u32, available: u32 },
    Gone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    pub unit_price: u64,
    pub left: u32,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Inventory {
    pub stock: BTreeMap<String, u32>,
    pub sold: BTreeMap<String, u64>,
    pub revenue: u64,
}

#[derive(Clone)]
pub struct InventoryHandle {
    state: Arc<Mutex<Inventory>>,
    /// Dropped with the last handle: tells the task below to hand back the state.
    _alive: mpsc::Sender<()>,
}

impl InventoryHandle {
    pub fn spawn(
        initial: BTreeMap<String, u32>,
        _mailbox: usize,
    ) -> (InventoryHandle, JoinHandle<Inventory>) {
        let state = Arc::new(Mutex::new(Inventory {
            stock: initial,
            ..Inventory::default()
        }));
        let (alive, mut gone) = mpsc::channel::<()>(1);
        let shared = Arc::clone(&state);
        let done = tokio::spawn(async move {
            let _ = gone.recv().await; // `None` once every handle is dropped
            shared.lock().unwrap_or_else(|p| p.into_inner()).clone()
        });
        (
            InventoryHandle {
                state,
                _alive: alive,
            },
            done,
        )
    }

    pub async fn reserve(&self, product: &str, qty: u32) -> Result<Reservation, InventoryError> {
        let available = {
            let inventory = self.state.lock().unwrap_or_else(|p| p.into_inner());
            *inventory
                .stock
                .get(product)
                .ok_or_else(|| InventoryError::UnknownProduct(product.to_string()))?
        };
        if available < qty {
            return Err(InventoryError::OutOfStock {
                wanted: qty,
                available,
            });
        }
        let unit_price = support::unit_price(product).await; // (wrong: others check meanwhile)
        let mut inventory = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let left = available - qty; // (wrong: `available` is 20 ms old)
        inventory.stock.insert(product.to_string(), left);
        *inventory.sold.entry(product.to_string()).or_default() += u64::from(qty);
        inventory.revenue += u64::from(qty) * unit_price;
        Ok(Reservation { unit_price, left })
    }
}
