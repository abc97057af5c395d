// A plausible wrong solution of async/01, from Python habits: create the three futures first,
// believing they start running in the background (as `asyncio.create_task` would), then await
// them. A Rust future does nothing until it is polled: the first `.await` runs the first fetch
// alone, then the second, then the third. Sequential, exactly like awaiting a coroutine object.

use support::Site;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    pub user: String,
    pub orders: String,
    pub recommendations: String,
}

pub async fn load_dashboard(site: &Site) -> Dashboard {
    let user = site.get("/user");
    let orders = site.get("/orders");
    let recommendations = site.get("/recommendations");
    Dashboard {
        user: user.await,
        orders: orders.await,
        recommendations: recommendations.await,
    }
}
