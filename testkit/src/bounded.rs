//! A future that must finish in time.

use std::future::Future;
use std::time::Duration;

/// Runs `f`, panicking with "`what` took more than `secs` s" if it has not
/// finished by then.
pub async fn bounded<F: Future>(secs: u64, what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("{what} took more than {secs} s"))
}
