// A plausible wrong solution of patterns/06: the actor asks the price itself, inside its loop,
// so the customer's request is simple. Every answer is right and nothing is oversold. But while
// the actor awaits one price, no other message is handled: customers are served one at a time,
// 20 ms each, 100 customers in 2 s instead of 20 ms. (If the awaited service ever called the
// actor back, it would wait for ever.)

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

enum Command {
    Reserve {
        product: String,
        qty: u32,
        reply: oneshot::Sender<Result<Reservation, InventoryError>>,
    },
}

impl Inventory {
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
        *available -= qty;
        *self.sold.entry(product.to_string()).or_default() += u64::from(qty);
        self.revenue += u64::from(qty) * unit_price;
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
        let actor = tokio::spawn(async move {
            let mut inventory = Inventory {
                stock: initial,
                ..Inventory::default()
            };
            while let Some(Command::Reserve {
                product,
                qty,
                reply,
            }) = rx.recv().await
            {
                let unit_price = support::unit_price(&product).await; // (wrong: the loop waits)
                let result = inventory
                    .reserve(&product, qty, unit_price)
                    .map(|left| Reservation { unit_price, left });
                let _ = reply.send(result);
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
