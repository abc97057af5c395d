//! Actor: a tokio task owns the inventory; handles send it messages (mpsc) and await replies
//! (oneshot).
//!
//! Course section **8.4 Patterns de concurrence** (shared state without locks; the asyncio
//! equivalent is a task reading an `asyncio.Queue` and answering through `Future`s). An online
//! shop's stock is owned by one task. Hundreds of customer tasks reserve items concurrently
//! through cheap, cloneable handles; nobody else can touch the stock, so there is no lock and no
//! way to oversell.
//!
//! Crates: `tokio = { version = "1.54", features = ["sync", "rt", "macros", "rt-multi-thread", "time"] }`,
//! `thiserror = "2"` (`macros`, `rt-multi-thread` and `time` are for the tests)
//!
//! # Concepts
//! - **Ownership instead of locking.** The actor's state is a plain map owned by one task. Each
//!   message is handled to completion before the next one, so "check stock, then take it" is
//!   atomic by construction (with a `Mutex`, forgetting to hold the lock across both steps is
//!   the classic oversell bug).
//! - **Request/reply**: every command carries a `oneshot::Sender` for its answer; the handle's
//!   async methods hide the plumbing (`inventory.reserve("laptop", 2).await`).
//! - **Bounded mailbox** (`mpsc::channel(capacity)`): when the actor is busy, senders wait in
//!   `send().await` (backpressure) instead of growing an unbounded queue.
//! - **Shutdown when the last handle drops**: the actor's `recv()` returns `None` once every
//!   `Sender` is gone, the loop ends, and the task returns its final state to whoever awaits
//!   its `JoinHandle`. No stop message, no flag.
//! - **Checked arithmetic**: a restock that would overflow the stock is refused, not wrapped.
//! - **Pitfall**: never `.await` something slow inside the actor's loop (a database call, a
//!   reply from another actor that may call back): the whole mailbox waits, or deadlocks.
//!
//! # Run
//! ```text
//! cargo run -p examples-patterns --bin actor
//! cargo run -p examples-patterns --bin actor -- --customers 2000 --stock 50
//! cargo run --release -p examples-patterns --bin actor -- --customers 100000 --mailbox 1024
//! cargo run -p examples-patterns --bin actor -- --json
//! cargo run -p examples-patterns --bin actor -- --python   # + the asyncio actor
//! ```
//!
//! # What to observe
//! - Reservations granted never exceed the stock: the final check `stock + reserved = initial +
//!   restocked` holds for every product, however the tasks interleave.
//! - The actor ends by itself after the last handle is dropped, and hands back its state.
//!   The asyncio version (`--python`) needs a stop message: an `asyncio.Queue` cannot close.
//! - Messages per second: an actor is a single task, so it is a serialisation point. Measure it
//!   in release; if one actor is the bottleneck, shard (one actor per product range).
//!
//! # Exercises
//! 1. Rewrite the inventory as `Arc<Mutex<HashMap>>` with a `reserve` that checks and takes in
//!    two separate lock sections. Run it until you catch an oversell.
//! 2. Add a `Reservation` that expires: the actor checks deadlines with `tokio::select!` on
//!    `recv()` and a `sleep_until` of the next expiry.
//! 3. Make the mailbox capacity 1 and measure: what does backpressure cost here?
//! 4. Shard the inventory into 4 actors by product hash behind one handle type.
//! 5. Checked: the actor with a slow pricing call per reservation, never oversold, stopping with
//!    its last handle (`cargo run -p shared --bin exercises -- check patterns/06`).

// === Lesson: copy from here ===

/// The inventory actor. In a real project: `inventory.rs`.
mod inventory {
    use std::collections::BTreeMap;
    use tokio::sync::{mpsc, oneshot};

    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum InventoryError {
        #[error("unknown product {0:?}")]
        UnknownProduct(String),
        #[error("out of stock: {wanted} wanted, {available} available")]
        OutOfStock { wanted: u32, available: u32 },
        #[error("restocking {0:?} would overflow its stock")]
        TooMuchStock(String),
        /// The actor has stopped (it panicked, or the runtime is shutting down).
        #[error("the inventory actor is gone")]
        Gone,
    }

    /// The messages. Each carries its own reply channel.
    enum Command {
        Reserve {
            product: String,
            qty: u32,
            reply: oneshot::Sender<Result<u32, InventoryError>>,
        },
        Restock {
            product: String,
            qty: u32,
            reply: oneshot::Sender<Result<u32, InventoryError>>,
        },
        Stock {
            product: String,
            reply: oneshot::Sender<Option<u32>>,
        },
    }

    /// What the actor owns. Nothing else can reach it.
    #[derive(Debug, Default, Clone, PartialEq)]
    pub struct Inventory {
        pub stock: BTreeMap<String, u32>,
        pub reserved: BTreeMap<String, u64>,
        pub restocked: BTreeMap<String, u64>,
        pub rejected: u64,
        pub messages: u64,
    }

    impl Inventory {
        /// One message, handled to completion: check-and-take cannot be interleaved.
        fn handle(&mut self, cmd: Command) {
            self.messages += 1;
            match cmd {
                Command::Reserve {
                    product,
                    qty,
                    reply,
                } => {
                    let result = match self.stock.get_mut(&product) {
                        None => Err(InventoryError::UnknownProduct(product.clone())),
                        Some(available) if *available < qty => Err(InventoryError::OutOfStock {
                            wanted: qty,
                            available: *available,
                        }),
                        Some(available) => {
                            *available -= qty;
                            *self.reserved.entry(product).or_default() += u64::from(qty);
                            Ok(*available)
                        }
                    };
                    if result.is_err() {
                        self.rejected += 1;
                    }
                    // The caller may have given up (dropped its receiver): not our problem.
                    let _ = reply.send(result);
                }
                Command::Restock {
                    product,
                    qty,
                    reply,
                } => {
                    let stock = self.stock.entry(product.clone()).or_default();
                    // Checked: a stock that wrapped around to a small number would be a lie.
                    let result = match stock.checked_add(qty) {
                        Some(total) => {
                            *stock = total;
                            *self.restocked.entry(product).or_default() += u64::from(qty);
                            Ok(total)
                        }
                        None => Err(InventoryError::TooMuchStock(product)),
                    };
                    let _ = reply.send(result);
                }
                Command::Stock { product, reply } => {
                    let _ = reply.send(self.stock.get(&product).copied());
                }
            }
        }
    }

    /// The cheap, cloneable way to talk to the actor. When the last clone is dropped, the actor
    /// stops.
    #[derive(Clone)]
    pub struct InventoryHandle {
        tx: mpsc::Sender<Command>,
    }

    impl InventoryHandle {
        /// Start the actor; its `JoinHandle` yields the final state once every handle is dropped.
        pub fn spawn(
            initial: BTreeMap<String, u32>,
            mailbox: usize,
        ) -> (InventoryHandle, tokio::task::JoinHandle<Inventory>) {
            let (tx, mut rx) = mpsc::channel(mailbox);
            let task = tokio::spawn(async move {
                let mut inv = Inventory {
                    stock: initial,
                    ..Inventory::default()
                };
                // `None` = every Sender (handle) is gone: nobody can ask anything any more.
                while let Some(cmd) = rx.recv().await {
                    inv.handle(cmd); // synchronous on purpose: no .await inside the actor's loop
                }
                inv
            });
            (InventoryHandle { tx }, task)
        }

        /// Send a command and wait for its reply.
        async fn ask<T>(
            &self,
            make: impl FnOnce(oneshot::Sender<T>) -> Command,
        ) -> Result<T, InventoryError> {
            let (reply, answer) = oneshot::channel();
            // Waits here when the mailbox is full (backpressure).
            self.tx
                .send(make(reply))
                .await
                .map_err(|_| InventoryError::Gone)?;
            answer.await.map_err(|_| InventoryError::Gone)
        }

        /// Take `qty` units; returns what is left.
        pub async fn reserve(&self, product: &str, qty: u32) -> Result<u32, InventoryError> {
            let product = product.to_string();
            self.ask(|reply| Command::Reserve {
                product,
                qty,
                reply,
            })
            .await?
        }

        /// Adds `qty` units; returns the new stock.
        pub async fn restock(&self, product: &str, qty: u32) -> Result<u32, InventoryError> {
            let product = product.to_string();
            self.ask(|reply| Command::Restock {
                product,
                qty,
                reply,
            })
            .await?
        }

        pub async fn stock(&self, product: &str) -> Result<Option<u32>, InventoryError> {
            let product = product.to_string();
            self.ask(|reply| Command::Stock { product, reply }).await
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::collections::BTreeMap;

        fn one(product: &str, qty: u32) -> BTreeMap<String, u32> {
            BTreeMap::from([(product.to_string(), qty)])
        }

        #[tokio::test]
        async fn reserve_restock_and_errors() {
            let (inv, actor) = InventoryHandle::spawn(one("pen", 5), 4);
            assert_eq!(inv.reserve("pen", 3).await, Ok(2));
            assert_eq!(
                inv.reserve("pen", 3).await,
                Err(InventoryError::OutOfStock {
                    wanted: 3,
                    available: 2
                })
            );
            assert_eq!(
                inv.reserve("ink", 1).await,
                Err(InventoryError::UnknownProduct("ink".into()))
            );
            assert_eq!(inv.restock("pen", 10).await, Ok(12));
            assert_eq!(inv.stock("pen").await, Ok(Some(12)));
            assert_eq!(
                inv.restock("pen", u32::MAX).await,
                Err(InventoryError::TooMuchStock("pen".into()))
            );
            assert_eq!(
                inv.stock("pen").await,
                Ok(Some(12)),
                "a refused restock changes nothing"
            );
            drop(inv);
            let state = actor.await.unwrap();
            assert_eq!(state.reserved["pen"], 3);
            assert_eq!(state.restocked["pen"], 10);
            assert_eq!(state.rejected, 2);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn never_oversells_under_contention() {
            let (inv, actor) = InventoryHandle::spawn(one("gpu", 100), 2);
            let tasks: Vec<_> = (0..1000)
                .map(|_| {
                    let inv = inv.clone();
                    tokio::spawn(async move { inv.reserve("gpu", 1).await.is_ok() })
                })
                .collect();
            drop(inv);
            let mut granted = 0;
            for t in tasks {
                granted += u32::from(t.await.unwrap());
            }
            assert_eq!(granted, 100, "exactly the stock is sold, never more");
            let state = actor.await.unwrap();
            assert_eq!((state.stock["gpu"], state.rejected), (0, 900));
        }

        #[tokio::test]
        async fn actor_stops_when_the_last_handle_drops() {
            let (inv, actor) = InventoryHandle::spawn(one("a", 1), 1);
            let inv2 = inv.clone();
            drop(inv);
            tokio::task::yield_now().await;
            assert!(!actor.is_finished(), "a handle is still alive");
            drop(inv2);
            // The guard is only against a hang; the actor ends as soon as it sees `None`.
            let state = tokio::time::timeout(std::time::Duration::from_secs(30), actor)
                .await
                .expect("actor should stop")
                .unwrap();
            assert_eq!(state.messages, 0);
        }
    }
}

// === Harness: not part of the lesson ===

use anyhow::{Context, Result, bail};
use clap::Parser;
use examples_patterns::python_peer;
use inventory::{Inventory, InventoryError, InventoryHandle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use shared::cli;
use shared::report::{fmt_duration, print_json};
use std::collections::BTreeMap;
use std::time::Instant;

/// A tokio actor owning an inventory; concurrent customers reserve through handles.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Customer tasks, each trying to reserve a few items.
    #[arg(long, default_value_t = 500, value_parser = cli::u32_in(0, 1_000_000))]
    customers: u32,
    /// Initial stock of each product.
    #[arg(long, default_value_t = 200, value_parser = cli::u32_in(0, 1_000_000_000))]
    stock: u32,
    /// Mailbox capacity (messages waiting for the actor).
    #[arg(long, default_value_t = 64, value_parser = cli::usize_in(1, 1_000_000))]
    mailbox: usize,
    /// Seed for what customers buy.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
    /// Also run the course's Python (python/actor.py: an asyncio task reading an
    /// `asyncio.Queue`, replies through Futures) on the same customers, in one table.
    #[arg(long)]
    python: bool,
}

const PRODUCTS: [&str; 4] = ["laptop", "phone", "tablet", "headphones"];
/// Every 50th customer brings a delivery of this many units first.
const RESTOCK: u32 = 10;

#[derive(Serialize)]
struct FlashSaleReport {
    customers: u32,
    granted: u64,
    rejected: u64,
    messages: u64,
    messages_per_s: f64,
    wall_s: f64,
    conserved: bool,
    final_state: InventoryJson,
}

#[derive(Serialize)]
struct InventoryJson {
    stock: BTreeMap<String, u32>,
    reserved: BTreeMap<String, u64>,
    restocked: BTreeMap<String, u64>,
    rejected: u64,
    messages: u64,
}

impl From<Inventory> for InventoryJson {
    fn from(i: Inventory) -> Self {
        InventoryJson {
            stock: i.stock,
            reserved: i.reserved,
            restocked: i.restocked,
            rejected: i.rejected,
            messages: i.messages,
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let initial: BTreeMap<String, u32> = PRODUCTS
        .iter()
        .map(|p| (p.to_string(), args.stock))
        .collect();
    let python = args.python.then(|| python_peer::python_or_exit(&[]));
    let plan = customers(&args);
    let (inventory, actor) = InventoryHandle::spawn(initial.clone(), args.mailbox);
    let start = Instant::now();

    let mut customers = tokio::task::JoinSet::new();
    for &Customer {
        product,
        qty,
        restock,
    } in &plan
    {
        let inv = inventory.clone(); // a handle per task: a clone of the mpsc Sender
        customers.spawn(async move {
            if restock {
                inv.restock(product, RESTOCK).await?;
            }
            let granted = match inv.reserve(product, qty).await {
                Ok(_left) => true,
                Err(InventoryError::OutOfStock { .. }) => false,
                Err(e) => return Err(e),
            };
            // A customer also looks at the stock page (a read: a message like any other).
            inv.stock(product).await?;
            Ok::<bool, InventoryError>(granted)
        });
    }
    // Drop our own handle: from now on, only the customers keep the actor alive.
    drop(inventory);

    let mut granted = 0u64;
    while let Some(r) = customers.join_next().await {
        if r.context("a customer task panicked")?? {
            granted += 1;
        }
    }
    // Every handle is gone now, so the actor's loop has ended: its final state comes back.
    let state = actor.await.context("the actor panicked")?;
    let wall = start.elapsed();

    // The invariant: stock + reserved = initial + restocked, for every product.
    let conserved = PRODUCTS.iter().all(|&p| {
        let get = |m: &BTreeMap<String, u64>| m.get(p).copied().unwrap_or(0);
        let stock = state.stock.get(p).copied().unwrap_or(0);
        u64::from(stock) + get(&state.reserved) == u64::from(initial[p]) + get(&state.restocked)
    });
    let report = FlashSaleReport {
        customers: args.customers,
        granted,
        rejected: state.rejected,
        messages: state.messages,
        messages_per_s: state.messages as f64 / wall.as_secs_f64().max(1e-9),
        wall_s: wall.as_secs_f64(),
        conserved,
        final_state: InventoryJson::from(state),
    };
    let python = match python {
        Some(py) => Some(python_run(&py, &args, &plan).await?),
        None => None,
    };
    if args.json {
        let mut out = serde_json::to_value(&report).context("serializing the report")?;
        if let Some(py) = &python {
            out["python"] = py.clone();
        }
        print_json(&out);
    } else {
        print_report(&report, &initial, wall);
        if let Some(py) = &python {
            print_python_table(&report, py);
        }
    }
    if !conserved {
        bail!("inventory not conserved: this is a bug");
    }
    if let Some(py) = &python {
        python_agrees(&report, py)?;
    }
    Ok(())
}

/// One customer of the flash sale: what they want, and whether they bring a delivery first.
#[derive(Debug, Clone, Copy, Serialize)]
struct Customer {
    product: &'static str,
    qty: u32,
    restock: bool,
}

/// The seeded customers, decided before the sale (so both languages get the same ones).
fn customers(args: &Args) -> Vec<Customer> {
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    (0..args.customers)
        .map(|c| Customer {
            product: PRODUCTS[rng.random_range(0..PRODUCTS.len())],
            qty: rng.random_range(1..=3),
            restock: c % 50 == 49, // now and then, a delivery arrives
        })
        .collect()
}

/// Runs python/actor.py on the same customers, stock and mailbox size.
async fn python_run(
    py: &shared::python::Python,
    args: &Args,
    plan: &[Customer],
) -> Result<serde_json::Value> {
    let dir = tempfile::tempdir().context("a temporary folder for the customers")?;
    let path = dir.path().join("customers.json");
    std::fs::write(&path, serde_json::to_vec(plan)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let a = vec![
        path.display().to_string(),
        format!("--stock={}", args.stock),
        format!("--mailbox={}", args.mailbox),
    ];
    let py = py.clone();
    tokio::task::spawn_blocking(move || python_peer::run_recipe(&py, "actor", &a))
        .await
        .context("the Python run panicked")?
}

/// What must agree: the same messages handled, every customer answered, nothing oversold.
/// Which customers got the last units depends on the order the tasks ran in (in both
/// languages), so the granted counts may differ when demand exceeds the stock.
fn python_agrees(r: &FlashSaleReport, py: &serde_json::Value) -> Result<()> {
    if py["conserved"] != true {
        bail!("the Python actor did not conserve the stock: {py}");
    }
    let field = |k: &str| python_peer::u64_field(py, k);
    let answered = field("granted")? + field("rejected")?;
    if field("messages")? != r.messages || answered != u64::from(r.customers) {
        bail!(
            "Rust handled {} messages for {} customers; Python {} messages, {answered} answers",
            r.messages,
            r.customers,
            field("messages")?
        );
    }
    Ok(())
}

fn print_python_table(r: &FlashSaleReport, py: &serde_json::Value) {
    let num = |k: &str| py[k].as_f64().unwrap_or(f64::NAN);
    let rows = vec![
        vec![
            "Rust (tokio task, mpsc + oneshot)".to_string(),
            fmt_duration(std::time::Duration::from_secs_f64(r.wall_s)),
            r.messages.to_string(),
            format!("{:.0}", r.messages_per_s),
            r.granted.to_string(),
            r.rejected.to_string(),
            if r.conserved { "yes" } else { "NO" }.to_string(),
        ],
        vec![
            "Python (asyncio task, Queue + Future)".to_string(),
            fmt_duration(std::time::Duration::try_from_secs_f64(num("wall_s")).unwrap_or_default()),
            py["messages"].to_string(),
            format!("{:.0}", num("messages_per_s")),
            py["granted"].to_string(),
            py["rejected"].to_string(),
            if py["conserved"] == true { "yes" } else { "NO" }.to_string(),
        ],
    ];
    println!();
    println!(
        "the same customers in the course's Python ({}):",
        py["interpreter"].as_str().unwrap_or("python3")
    );
    print!(
        "{}",
        python_peer::table(
            &[
                "actor",
                "wall",
                "messages",
                "messages/s",
                "granted",
                "refused",
                "conserved"
            ],
            &rows,
        )
    );
    println!(
        "Python / Rust wall time: {} (granted counts can differ when demand exceeds the stock: \
         who gets the last units depends on the order the tasks ran in)",
        python_peer::ratio(num("wall_s"), r.wall_s)
    );
}

fn print_report(r: &FlashSaleReport, initial: &BTreeMap<String, u32>, wall: std::time::Duration) {
    println!(
        "{} customers, {} reservations granted, {} refused (out of stock)",
        r.customers, r.granted, r.rejected
    );
    println!(
        "{:<12} {:>8} {:>9} {:>10} {:>7}",
        "product", "initial", "restocked", "reserved", "left"
    );
    let s = &r.final_state;
    for p in PRODUCTS {
        let get = |m: &BTreeMap<String, u64>| m.get(p).copied().unwrap_or(0);
        println!(
            "{p:<12} {:>8} {:>9} {:>10} {:>7}",
            initial[p],
            get(&s.restocked),
            get(&s.reserved),
            s.stock.get(p).copied().unwrap_or(0)
        );
    }
    println!(
        "{} messages in {} = {:.0} messages/s through one actor",
        r.messages,
        fmt_duration(wall),
        r.messages_per_s
    );
    println!(
        "stock + reserved = initial + restocked for every product: {}; the actor stopped when the last handle was dropped",
        if r.conserved { "yes" } else { "NO" }
    );
}
