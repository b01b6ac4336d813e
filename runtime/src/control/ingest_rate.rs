//! A tenant's ingest rate quota (`ingest_records_per_s`,
//! `ingest_bytes_per_s`): the records and bytes it may post to its `http`
//! sources per second, over all its pipelines (issue 18, item 3).
//!
//! One token bucket per measure, holding at most one second's worth. A post
//! is admitted while both buckets are above zero and takes its whole cost,
//! possibly into debt: a post larger than a second's worth still goes
//! through (so no post is refused forever), and the debt it leaves is what
//! makes the next ones wait. A refused post is told when to retry: when
//! both buckets are back above zero. Pure: the clock is passed in.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One tenant's two buckets.
#[derive(Debug, Clone, Copy)]
struct Buckets {
    records: f64,
    bytes: f64,
    at: Instant,
}

/// The quota of one tenant, per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub records_per_s: u64,
    pub bytes_per_s: u64,
}

/// Every tenant's buckets, by tenant id (one entry per tenant that posted:
/// a number the operator controls).
#[derive(Debug, Default)]
pub struct IngestRates {
    tenants: HashMap<String, Buckets>,
}

impl IngestRates {
    /// Admits a post of `records` records and `bytes` bytes by `tenant` at
    /// `now`, or says how long to wait before retrying.
    pub fn admit(&mut self, tenant: &str, rate: Rate, records: u64, bytes: u64, now: Instant) -> Result<(), Duration> {
        let (r_rate, b_rate) = (rate.records_per_s as f64, rate.bytes_per_s as f64);
        let b = self.tenants.entry(tenant.to_string()).or_insert(Buckets { records: r_rate, bytes: b_rate, at: now });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.records = (b.records + elapsed * r_rate).min(r_rate);
        b.bytes = (b.bytes + elapsed * b_rate).min(b_rate);
        b.at = now.max(b.at);
        if b.records <= 0.0 || b.bytes <= 0.0 {
            // Until both are above zero again.
            let wait = (-b.records / r_rate).max(-b.bytes / b_rate).max(0.0);
            return Err(Duration::from_secs_f64(wait));
        }
        b.records -= records as f64;
        b.bytes -= bytes as f64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate { records_per_s: 100, bytes_per_s: 10_000 };

    #[test]
    fn a_second_s_worth_passes_then_the_next_post_waits_for_the_refill() {
        let (mut rates, t0) = (IngestRates::default(), Instant::now());
        assert_eq!(rates.admit("a", RATE, 100, 1000, t0), Ok(()));
        let wait = rates.admit("a", RATE, 1, 10, t0).unwrap_err();
        assert_eq!(wait, Duration::ZERO, "empty, not in debt: a moment's refill is enough");
        assert_eq!(rates.admit("a", RATE, 1, 10, t0 + Duration::from_millis(20)), Ok(()));
    }

    #[test]
    fn a_post_over_a_second_s_worth_passes_into_debt_and_the_next_waits_it_off() {
        // Attack: one huge post after another, each larger than the quota.
        let (mut rates, t0) = (IngestRates::default(), Instant::now());
        assert_eq!(rates.admit("a", RATE, 400, 100, t0), Ok(()));
        let wait = rates.admit("a", RATE, 400, 100, t0 + Duration::from_secs(1)).unwrap_err();
        assert!(
            (wait.as_secs_f64() - 2.0).abs() < 1e-9,
            "{wait:?}: 300 records of debt left after one second's refill"
        );
        assert_eq!(rates.admit("a", RATE, 400, 100, t0 + Duration::from_millis(3001)), Ok(()));
    }

    #[test]
    fn bytes_limit_on_their_own_and_tenants_do_not_share_buckets() {
        let (mut rates, t0) = (IngestRates::default(), Instant::now());
        assert_eq!(rates.admit("a", RATE, 1, 30_000, t0), Ok(()));
        let wait = rates.admit("a", RATE, 1, 1, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 2.0).abs() < 1e-9, "{wait:?}");
        assert_eq!(rates.admit("b", RATE, 1, 1, t0), Ok(()), "another tenant has its own buckets");
    }

    #[test]
    fn over_any_window_a_tenant_gets_at_most_its_rate_plus_one_post() {
        // Oracle: whatever the posts and their spacing, what was admitted up
        // to time t is at most a second's burst plus t seconds' worth plus
        // the last admitted post (the one that went into debt).
        let (mut rates, t0) = (IngestRates::default(), Instant::now());
        let mut seed = 42u64;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let (mut admitted, mut now_ms, mut largest) = (0u64, 0u64, 0u64);
        for _ in 0..10_000 {
            now_ms += next(30);
            let records = 1 + next(250);
            if rates.admit("a", RATE, records, 1, t0 + Duration::from_millis(now_ms)).is_ok() {
                admitted += records;
                largest = largest.max(records);
            }
            let bound = 100 + 100 * now_ms / 1000 + largest;
            assert!(admitted <= bound, "{admitted} records admitted by {now_ms} ms, bound {bound}");
        }
        assert!(admitted >= 100 * now_ms / 1000 / 2, "the quota is not starved: {admitted} in {now_ms} ms");
    }
}
