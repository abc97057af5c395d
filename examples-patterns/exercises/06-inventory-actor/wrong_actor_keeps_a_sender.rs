// A plausible wrong solution of patterns/06: an actor that knows not to await the price in its
// loop, so it starts a task per reservation to fetch it, and that task posts the price back as a
// message. To give each task a `Sender`, the actor keeps one of its own mailbox. Every answer
// is right. But the mailbox now has a `Sender` that is never dropped: `recv()` never returns
// `None`, and the actor never stops, however many handles are gone. (The fix:
// `tx.downgrade()`, a `WeakSender` that does not keep the mailbox open.)

use std::collections::BTreeMap;
use tokio::sync::{mpsc, oneshot};
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

type Reply = oneshot::Sender<Result<Reservation, InventoryError>>;

enum Command {
    Reserve {
        product: String,
        qty: u32,
        reply: Reply,
    },
    /// The price of a reservation already taken from the stock has come back.
    Priced {
        qty: u32,
        left: u32,
        unit_price: u64,
        reply: Reply,
    },
}

impl Inventory {
    fn take(&mut self, product: &str, qty: u32) -> Result<u32, InventoryError> {
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
        *available -= qty;
        *self.sold.entry(product.to_string()).or_default() += u64::from(qty);
        Ok(*available)
    }
}

#[derive(Clone)]
pub struct InventoryHandle {
    tx: mpsc::Sender<Command>,
}

impl InventoryHandle {
    pub fn spawn(
        initial: BTreeMap<String, u32>,
        mailbox: usize,
    ) -> (InventoryHandle, JoinHandle<Inventory>) {
        let (tx, mut rx) = mpsc::channel(mailbox.max(1));
        let me = tx.clone(); // (wrong: the actor's own Sender keeps its mailbox open)
        let actor = tokio::spawn(async move {
            let mut inventory = Inventory {
                stock: initial,
                ..Inventory::default()
            };
            while let Some(command) = rx.recv().await {
                match command {
                    Command::Reserve {
                        product,
                        qty,
                        reply,
                    } => match inventory.take(&product, qty) {
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                        Ok(left) => {
                            let me = me.clone();
                            tokio::spawn(async move {
                                let unit_price = support::unit_price(&product).await;
                                let priced = Command::Priced {
                                    qty,
                                    left,
                                    unit_price,
                                    reply,
                                };
                                let _ = me.send(priced).await;
                            });
                        }
                    },
                    Command::Priced {
                        qty,
                        left,
                        unit_price,
                        reply,
                    } => {
                        inventory.revenue += u64::from(qty) * unit_price;
                        let _ = reply.send(Ok(Reservation { unit_price, left }));
                    }
                }
            }
            inventory
        });
        (InventoryHandle { tx }, actor)
    }

    pub async fn reserve(&self, product: &str, qty: u32) -> Result<Reservation, InventoryError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Reserve {
            product: product.to_string(),
            qty,
            reply,
        };
        self.tx
            .send(command)
            .await
            .map_err(|_| InventoryError::Gone)?;
        answer.await.map_err(|_| InventoryError::Gone)?
    }
}
