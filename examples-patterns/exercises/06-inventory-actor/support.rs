// Test support of patterns/06: the pricing service a reservation asks. Every variant sees it as
// `support::unit_price`.

use std::time::Duration;

/// How long the pricing service takes to answer (virtual time: the checks pause the clock).
pub const PRICE_LATENCY: Duration = Duration::from_millis(20);

/// The unit price of `product`, in cents: a call to another service, 20 ms.
pub async fn unit_price(product: &str) -> u64 {
    tokio::time::sleep(PRICE_LATENCY).await;
    price_of(product)
}

/// The same price, without the wait (for the checks).
pub fn price_of(product: &str) -> u64 {
    100 + product.bytes().map(u64::from).sum::<u64>() % 900
}
