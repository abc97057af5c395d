// Reference solution of patterns/06 (see exercise.rs for the statement).

use std::collections::BTreeMap;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryError {
    UnknownProduct(String),
    OutOfStock {
        wanted: u32,
        available: u32,
    },
    /// The actor has stopped.
    Gone,
}

/// A granted reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// In cents, from the pricing service.
    pub unit_price: u64,
    /// Units of the product left after this one.
    pub left: u32,
}

/// What the actor owns, and hands back when it stops.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Inventory {
    pub stock: BTreeMap<String, u32>,
    /// Units sold, per product.
    pub sold: BTreeMap<String, u64>,
    /// The sum of `qty × unit_price` over every reservation granted, in cents.
    pub revenue: u64,
}

enum Command {
    Reserve {
        product: String,
        qty: u32,
        unit_price: u64,
        reply: oneshot::Sender<Result<u32, InventoryError>>,
    },
}

impl Inventory {
    /// Takes `qty` units of `product` if there are that many; returns the units left.
    fn reserve(&mut self, product: &str, qty: u32, unit_price: u64) -> Result<u32, InventoryError> {
        let available = self
            .stock
            .get_mut(product)
            .ok_or_else(|| InventoryError::UnknownProduct(product.to_string()))?;
        if *available < qty {
            return Err(InventoryError::OutOfStock {
                wanted: qty,
                available: *available,
            });
        }
        // Checked and taken in one message: no other request can run in between.
        *available -= qty;
        *self.sold.entry(product.to_string()).or_default() += u64::from(qty);
        self.revenue = self
            .revenue
            .saturating_add(u64::from(qty).saturating_mul(unit_price));
        Ok(*available)
    }
}

/// The cheap, cloneable way to talk to the actor.
#[derive(Clone)]
pub struct InventoryHandle {
    tx: mpsc::Sender<Command>,
}

impl InventoryHandle {
    /// Starts the actor; its `JoinHandle` yields the final state once every handle is dropped.
    pub fn spawn(
        initial: BTreeMap<String, u32>,
        mailbox: usize,
    ) -> (InventoryHandle, JoinHandle<Inventory>) {
        let (tx, mut rx) = mpsc::channel(mailbox.max(1));
        // The task owns the Receiver and the state, and no Sender: the handles hold them all.
        let actor = tokio::spawn(async move {
            let mut inventory = Inventory {
                stock: initial,
                ..Inventory::default()
            };
            // `None` once every Sender (every handle) is gone: nobody can ask anything any more.
            while let Some(command) = rx.recv().await {
                match command {
                    Command::Reserve {
                        product,
                        qty,
                        unit_price,
                        reply,
                    } => {
                        // Synchronous: the loop awaits nothing but the next message. The
                        // customer may have given up (dropped its receiver): not our problem.
                        let _ = reply.send(inventory.reserve(&product, qty, unit_price));
                    }
                }
            }
            inventory
        });
        (InventoryHandle { tx }, actor)
    }

    /// Reserves `qty` units of `product` at its current price.
    pub async fn reserve(&self, product: &str, qty: u32) -> Result<Reservation, InventoryError> {
        // The slow call runs here, in the customer's task: customers wait for their prices at
        // the same time, and the actor never waits for any.
        let unit_price = support::unit_price(product).await;
        let (reply, answer) = oneshot::channel();
        let command = Command::Reserve {
            product: product.to_string(),
            qty,
            unit_price,
            reply,
        };
        // Waits here while the mailbox is full (backpressure).
        self.tx
            .send(command)
            .await
            .map_err(|_| InventoryError::Gone)?;
        let left = answer.await.map_err(|_| InventoryError::Gone)??;
        Ok(Reservation { unit_price, left })
    }
}
