// Checks of patterns/06, compiled against the learner's file, the solution and each wrong one.
// Every scenario runs on a paused tokio clock: the pricing service's 20 ms cost nothing, an hour
// of waiting for an actor that never stops costs nothing, and each seed gives the same run.

use shared::exercise::{Check, Failure, Jitter, Progress, ensure, stress, watchdog};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// How long the checks wait (virtual time) for the actor to stop after its last handle.
const STOP_LIMIT: Duration = Duration::from_secs(3600);

fn paused() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| Failure::property("runs", format!("cannot build a runtime: {e}")))
}

/// A panic in a customer's task (a `todo!()`) goes on to the watchdog, which reports it.
fn joined<T>(r: Result<T, tokio::task::JoinError>) -> T {
    r.unwrap_or_else(|e| match e.try_into_panic() {
        Ok(p) => std::panic::resume_unwind(p),
        Err(e) => panic!("a task was cancelled: {e}"),
    })
}

/// Drops `handle` (the last one) and waits for the actor's final state.
async fn stopped(
    handle: InventoryHandle,
    actor: tokio::task::JoinHandle<Inventory>,
    when: &str,
) -> Result<Inventory, Failure> {
    drop(handle);
    match tokio::time::timeout(STOP_LIMIT, actor).await {
        Ok(r) => Ok(joined(r)),
        Err(_) => Err(Failure::property(
            "the actor stops when the last handle is dropped",
            format!(
                "{when}, every handle was dropped, and the actor was still running an hour later \
                 (virtual time): something else holds a Sender of its mailbox"
            ),
        )),
    }
}

const PRODUCTS: [&str; 3] = ["laptop", "phone", "pen"];

async fn flash_sale(seed: u64) -> Check {
    let mut draw = Jitter::new(seed, 0);
    let initial: BTreeMap<String, u32> = PRODUCTS
        .iter()
        .map(|p| (p.to_string(), 10 + draw.below(50) as u32))
        .collect();
    let customers = 150 + draw.below(151);
    let mailbox = 1 + draw.below(16) as usize;
    let (handle, actor) = InventoryHandle::spawn(initial.clone(), mailbox);
    let mut tasks = Vec::new();
    for c in 0..customers {
        let mut j = Jitter::new(seed, c + 1);
        let product = match j.below(20) {
            0 => "ghost", // not in the shop
            n => PRODUCTS[(n % 3) as usize],
        };
        let qty = 1 + j.below(3) as u32;
        let arrives = Duration::from_millis(j.below(40));
        let handle = handle.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(arrives).await;
            (product, qty, handle.reserve(product, qty).await)
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(joined(t.await));
    }
    let what = format!("{customers} customers, stock {initial:?}, mailbox {mailbox}");
    let end = stopped(
        handle,
        actor,
        &format!("after a sale to {customers} customers"),
    )
    .await?;
    let mut granted: BTreeMap<&str, u64> = BTreeMap::new();
    let mut revenue = 0u64;
    for (product, qty, answer) in &answers {
        match answer {
            Ok(r) => {
                *granted.entry(product).or_default() += u64::from(*qty);
                revenue += u64::from(*qty) * support::price_of(product);
                ensure(
                    r.unit_price == support::price_of(product),
                    "each reservation carries its price",
                    || {
                        format!(
                            "{product}: unit price {} instead of {}",
                            r.unit_price,
                            support::price_of(product)
                        )
                    },
                )?;
            }
            Err(InventoryError::OutOfStock { wanted, available }) => {
                let left = end.stock.get(*product).copied().unwrap_or(0);
                ensure(
                    *wanted == *qty && available < wanted && left < *wanted,
                    "no customer is turned away while the units are there",
                    || {
                        format!(
                            "{what}: a customer wanting {qty} {product} was told {answer:?}, and {left} \
                             were left at the end"
                        )
                    },
                )?;
            }
            Err(InventoryError::UnknownProduct(p)) => ensure(
                *product == "ghost" && p == product,
                "only an unknown product is unknown",
                || format!("{product}: {answer:?}"),
            )?,
            Err(InventoryError::Gone) => {
                return Err(Failure::property(
                    "the actor answers every customer",
                    format!("{what}: a customer got `Gone` while handles were alive"),
                ));
            }
        }
    }
    for product in PRODUCTS {
        let (start, left) = (u64::from(initial[product]), u64::from(end.stock[product]));
        let given = granted.get(product).copied().unwrap_or(0);
        let sold = end.sold.get(product).copied().unwrap_or(0);
        ensure(given <= start, "never more sold than stocked", || {
            format!("{what}: {given} {product}s granted to customers, {start} were in stock")
        })?;
        ensure(
            left + sold == start && sold == given,
            "units conserved: stock + sold = initial",
            || {
                format!(
                    "{what}: {product}: {start} at first, {given} granted to customers; the final \
                     state says {sold} sold and {left} left"
                )
            },
        )?;
    }
    ensure(end.revenue == revenue, "the revenue adds up", || {
        format!(
            "{what}: final revenue {} cents, the reservations granted add up to {revenue}",
            end.revenue
        )
    })
}

/// The actor serves while any handle lives, and stops when the last one goes.
async fn stops_with_its_last_handle() -> Check {
    let initial = BTreeMap::from([("pen".to_string(), 100)]);
    let (handle, actor) = InventoryHandle::spawn(initial, 4);
    let clones: Vec<_> = (0..3)
        .map(|_| {
            let h = handle.clone();
            tokio::spawn(async move { h.reserve("pen", 1).await.is_ok() })
        })
        .collect();
    for c in clones {
        ensure(joined(c.await), "the actor serves every handle", || {
            "a reservation of 1 pen out of 100 failed".into()
        })?;
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    ensure(
        !actor.is_finished(),
        "the actor serves while a handle lives",
        || "three of four handles were dropped and the actor stopped: one was still alive".into(),
    )?;
    let r = handle.reserve("pen", 2).await;
    ensure(
        r.as_ref().map(|r| r.left) == Ok(95),
        "the actor serves while a handle lives",
        || format!("a reservation of 2 pens after 3 went gave {r:?}"),
    )?;
    let end = stopped(handle, actor, "after 4 reservations from 4 handles").await?;
    ensure(
        end.sold.get("pen") == Some(&5),
        "units conserved: stock + sold = initial",
        || format!("5 pens reserved, the final state says {:?}", end.sold),
    )
}

/// 100 customers at once: each price takes 20 ms, asked concurrently. An actor that awaits
/// each price in its loop serves them one after the other.
async fn the_actor_never_waits_for_a_price() -> Check {
    let initial = BTreeMap::from([("phone".to_string(), 1_000)]);
    let (handle, actor) = InventoryHandle::spawn(initial, 8);
    let start = Instant::now();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let h = handle.clone();
            tokio::spawn(async move { h.reserve("phone", 1).await.is_ok() })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        granted += u32::from(joined(t.await));
    }
    let took = start.elapsed();
    stopped(handle, actor, "after 100 reservations").await?;
    ensure(granted == 100, "the actor answers every customer", || {
        format!("{granted} of 100 reservations of 1 phone out of 1000 were granted")
    })?;
    ensure(
        took <= support::PRICE_LATENCY * 3,
        "the actor's loop never awaits a slow call",
        || {
            format!(
                "100 customers at once took {took:?} of virtual time; each price takes {:?}, \
                 and asked by the customers themselves they all take about that",
                support::PRICE_LATENCY
            )
        },
    )
}

fn in_paused_runtime<F: std::future::Future<Output = Check>>(
    scenario: F,
    progress: &Progress,
) -> Check {
    let result = paused()?.block_on(scenario);
    progress.tick();
    result
}

pub fn all() -> Check {
    watchdog("inventory-actor", Duration::from_secs(10), |progress| {
        stress(20, |seed| in_paused_runtime(flash_sale(seed), progress))?;
        in_paused_runtime(stops_with_its_last_handle(), progress)?;
        in_paused_runtime(the_actor_never_waits_for_a_price(), progress)
    })
}
