//! Replay: spending a checked token in the spent set of a
//! [`LimitStore`] (in memory on SQLite, shared by every instance on
//! PostgreSQL), and the rule at the set's bound.
//!
//! A tag is kept until its token can no longer be presented anywhere:
//! `issued_at + max_age + CLOCK_SLACK_SECS` (an instance whose clock is
//! behind by the slack still takes the token that long).
//!
//! **At the bound.** The set holds at most `max_spent` live tags per
//! epoch. A spend that finds it full (after dropping expired tags) is
//! accepted and ends the epoch: the set starts empty and every token of
//! the old epoch, solved or not, is refused from then on as
//! [`PowError::Retired`]. An attacker who filled the set has to solve
//! everything again; a person holding an old token gets a fresh puzzle on
//! the page (one more press of Continue). Nobody is locked out, and no
//! forgotten tag can be replayed, because its epoch is over.

use super::{CLOCK_SLACK_SECS, PowError, PowGate};
use crate::limits::{LimitStore, Spend};
use crate::store::StoreError;

impl PowGate {
    /// Checks `solution` for `token` at `now_secs` (every check of the
    /// module documentation, in order) and spends the token in `spent`.
    ///
    /// # Errors
    ///
    /// `Ok(Err(_))`: the first failed check. `Err(_)`: the store failed.
    pub async fn verify(
        &self,
        spent: &impl LimitStore,
        token: &str,
        solution: &str,
        now_secs: u64,
    ) -> Result<Result<(), PowError>, StoreError> {
        let checked = match self.check(token, solution, now_secs) {
            Ok(t) => t,
            Err(e) => return Ok(Err(e)),
        };
        let until = checked
            .issued_at
            .saturating_add(self.max_age_secs())
            .saturating_add(CLOCK_SLACK_SECS);
        let until = i64::try_from(until).unwrap_or(i64::MAX);
        let now = i64::try_from(now_secs).unwrap_or(i64::MAX);
        Ok(
            match spent
                .spend(checked.epoch, &checked.tag, until, self.max_spent(), now)
                .await?
            {
                Spend::Fresh => Ok(()),
                Spend::EpochEnded { current } => {
                    tracing::warn!(
                        epoch = current,
                        "the proof-of-work spent set was full: every outstanding token is retired"
                    );
                    Ok(())
                }
                Spend::Replayed => Err(PowError::Replayed),
                Spend::Retired { .. } => Err(PowError::Retired),
            },
        )
    }
}
