// Exercise async/04 — A rate limit per client (a token bucket each)
//
// Concept: a chat server that lets one client flood every other one with lines is one bad
// client away from an outage. A token bucket per client allows bursts of up to `burst` lines,
// then `rate` lines per second on average: the bucket refills at `rate` tokens per second up to
// `burst`, each line takes one token, and a client with an empty bucket waits for the next
// token. Two mistakes make a limiter hurt the clients it should protect: one bucket shared by
// everyone, and a lock held while a client waits for its token (every other client then waits
// behind it). The shop's `RateLimiter` in shop-api.rs and examples-patterns' rate-limiter are
// the same idea; this is chat-server's exercise 2.
//
// Goal: write `RateLimiter::new(rate, burst)` and `acquire(client)`, which returns when
// `client` may send one more line: at once while its bucket holds a token, otherwise after the
// wait for the next one. Clients never wait for each other. A client idle for a long time gets
// `burst` lines at once again, never more.
//
// Hint: a `std::sync::Mutex<HashMap<u64, Bucket>>` with `Bucket { tokens: f64, last:
// tokio::time::Instant }`; in `acquire`, lock, refill (`tokens = (tokens + elapsed * rate)
// .min(burst)`), take a token if there is one, else compute the wait, *unlock*, sleep, retry. Use
// `tokio::time::Instant` and `tokio::time::sleep`: the checks run on tokio's paused clock.
//
// Checked by: 20 seeded runs on tokio's paused clock (exact virtual times): a flooder gets its
// burst at once then never more than `rate` per second (and not much less), a polite client
// next to it never waits, a client idle for 10 s gets exactly `burst` at once again, and five
// flooders each get their own rate. Every wrong solution is caught on every run (20/20).
// Run: cargo run -p shared --bin exercises -- check async/04

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::time::{Duration, Instant};

/// A token bucket per client.
pub struct RateLimiter {
    // Your fields: the rate, the burst, and one bucket per client.
}

impl RateLimiter {
    /// `rate` lines per second on average for each client, bursts of up to `burst`.
    pub fn new(rate: u32, burst: u32) -> Self {
        todo!("keep the rate and the burst, and an empty map of buckets")
    }

    /// Returns when `client` may send one more line.
    pub async fn acquire(&self, client: u64) {
        todo!("refill this client's bucket, take a token or sleep until the next one")
    }
}
