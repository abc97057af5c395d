// Reference solution of async/01 (see exercise.rs for the statement).

use support::Site;

/// What the dashboard shows: the body of each page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    pub user: String,
    pub orders: String,
    pub recommendations: String,
}

/// Fetches the three pages concurrently.
pub async fn load_dashboard(site: &Site) -> Dashboard {
    // The three futures are polled together by this one task: their sleeps overlap.
    let (user, orders, recommendations) = tokio::join!(
        site.get("/user"),
        site.get("/orders"),
        site.get("/recommendations"),
    );
    Dashboard {
        user,
        orders,
        recommendations,
    }
}
