//! Watermarks from the timestamps a source split produces.

use crate::types::Timestamp;
use std::time::Duration;

/// What a generator has to say after a batch or a quiet spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatermarkUpdate {
    /// Nothing new.
    None,
    /// The watermark advanced to this.
    Advance(Timestamp),
    /// No record for `idle_timeout`: stop holding the watermark back.
    Idle,
}

/// Flink's bounded out-of-orderness: the watermark trails the largest
/// timestamp seen by `delay` (minus one millisecond, so a record exactly
/// `delay` behind is still on time), and a split that stays silent for
/// `idle_timeout` is declared idle.
#[derive(Debug, Clone)]
pub struct BoundedOutOfOrderness {
    delay: i64,
    idle_timeout: Option<i64>,
    max_ts: Timestamp,
    emitted: Timestamp,
    last_record_at: Option<i64>,
    started_at: Option<i64>,
    idle: bool,
}

impl BoundedOutOfOrderness {
    /// A generator with the given delay and idleness timeout.
    pub fn new(delay: Duration, idle_timeout: Option<Duration>) -> Self {
        BoundedOutOfOrderness {
            delay: delay.as_millis() as i64,
            idle_timeout: idle_timeout.map(|d| d.as_millis() as i64),
            max_ts: Timestamp::MIN,
            emitted: Timestamp::MIN,
            last_record_at: None,
            started_at: None,
            idle: false,
        }
    }

    /// Records with these timestamps were produced at processing time `now_ms`.
    pub fn observe(&mut self, timestamps: impl IntoIterator<Item = Timestamp>, now_ms: i64) {
        let mut any = false;
        for ts in timestamps {
            self.max_ts = self.max_ts.max(ts);
            any = true;
        }
        if any {
            self.last_record_at = Some(now_ms);
        }
    }

    /// The largest timestamp seen (for checkpoints).
    pub fn max_timestamp(&self) -> Timestamp {
        self.max_ts
    }

    /// Continues from a checkpoint in which the largest timestamp seen was `max_ts`.
    pub fn resume(&mut self, max_ts: Timestamp) {
        self.max_ts = self.max_ts.max(max_ts);
    }

    /// Data was handed on at `now_ms` (after any backpressure): the split is active.
    pub fn delivered(&mut self, now_ms: i64) {
        if self.last_record_at.is_some() {
            self.last_record_at = Some(now_ms);
        }
    }

    /// The watermark the records seen so far allow.
    pub fn current(&self) -> Timestamp {
        if self.max_ts == Timestamp::MIN {
            Timestamp::MIN
        } else {
            self.max_ts.saturating_sub(self.delay).saturating_sub(1)
        }
    }

    /// What to send downstream now (`now_ms`: processing time).
    pub fn poll(&mut self, now_ms: i64) -> WatermarkUpdate {
        let started = *self.started_at.get_or_insert(now_ms);
        let wm = self.current();
        if wm > self.emitted {
            self.emitted = wm;
            self.idle = false;
            return WatermarkUpdate::Advance(wm);
        }
        let Some(limit) = self.idle_timeout else {
            return WatermarkUpdate::None;
        };
        let silent = now_ms.saturating_sub(self.last_record_at.unwrap_or(started)) >= limit;
        match (self.idle, silent) {
            (false, true) => {
                self.idle = true;
                WatermarkUpdate::Idle
            }
            (true, false) => {
                // Records arrived again without advancing the watermark: active anyway.
                self.idle = false;
                WatermarkUpdate::Advance(self.emitted)
            }
            _ => WatermarkUpdate::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trails_the_maximum_by_the_delay_minus_one() {
        let mut g = BoundedOutOfOrderness::new(Duration::from_millis(2000), None);
        assert_eq!(g.poll(0), WatermarkUpdate::None);
        g.observe([10_000, 12_000, 11_000], 0);
        assert_eq!(g.poll(0), WatermarkUpdate::Advance(9_999));
        g.observe([9_000], 1);
        assert_eq!(g.poll(1), WatermarkUpdate::None, "an old record does not move it back");
        g.observe([15_000], 2);
        assert_eq!(g.poll(2), WatermarkUpdate::Advance(12_999));
        assert_eq!(g.poll(1_000_000), WatermarkUpdate::None, "no idleness without a timeout");
    }

    #[test]
    fn a_silent_split_goes_idle_and_comes_back() {
        let mut g = BoundedOutOfOrderness::new(Duration::ZERO, Some(Duration::from_millis(500)));
        g.observe([100], 1_000);
        assert_eq!(g.poll(1_000), WatermarkUpdate::Advance(99));
        assert_eq!(g.poll(1_400), WatermarkUpdate::None);
        assert_eq!(g.poll(1_500), WatermarkUpdate::Idle);
        assert_eq!(g.poll(1_600), WatermarkUpdate::None, "idle is said once");
        g.observe([50], 2_000);
        assert_eq!(g.poll(2_000), WatermarkUpdate::Advance(99), "a record reactivates the split");
        g.observe([300], 2_100);
        assert_eq!(g.poll(2_100), WatermarkUpdate::Advance(299));
    }

    #[test]
    fn a_split_that_never_produces_goes_idle_after_the_timeout() {
        let mut g = BoundedOutOfOrderness::new(Duration::ZERO, Some(Duration::from_millis(500)));
        assert_eq!(g.poll(100), WatermarkUpdate::None);
        assert_eq!(g.poll(600), WatermarkUpdate::Idle);
    }
}
