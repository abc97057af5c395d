// A plausible wrong solution of async/01: one `.await` after the other. Correct results, but each
// fetch starts only when the previous one is done: the time is the sum of the three latencies.
// On a real network it "works", just slowly, which is why only a clock check catches it.

use support::Site;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    pub user: String,
    pub orders: String,
    pub recommendations: String,
}

pub async fn load_dashboard(site: &Site) -> Dashboard {
    let user = site.get("/user").await;
    let orders = site.get("/orders").await;
    let recommendations = site.get("/recommendations").await;
    Dashboard {
        user,
        orders,
        recommendations,
    }
}
