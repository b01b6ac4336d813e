//! The watermark of a stream that several producers write into, each
//! interleaving marks of its own progress with its records: a partition of
//! a pipeline's repartition topic, written by every source task of the
//! pipeline's workers. The stream's watermark is the minimum over the
//! producers (unheard ones hold it back; idle ones do not, and once all are
//! idle it is the maximum they reached; ended ones no longer count), and it
//! ends when every producer ended.

use super::{InputWatermarks, WatermarkUpdate};
use crate::types::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a producer says about its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// No more records at or before this time.
    Watermark(Timestamp),
    /// No records for a while: do not wait for it.
    Idle,
    /// No more records at all.
    End,
}

impl Mark {
    /// The mark's header value: `PRODUCER/PRODUCERS/(MILLIS|idle|end)`.
    pub fn encode(self, producer: u32, producers: u32) -> String {
        match self {
            Mark::Watermark(t) => format!("{producer}/{producers}/{t}"),
            Mark::Idle => format!("{producer}/{producers}/idle"),
            Mark::End => format!("{producer}/{producers}/end"),
        }
    }

    /// (producer, producers, mark) of a header value.
    pub fn decode(value: &[u8]) -> Result<(u32, u32, Mark), String> {
        let bad = || format!("a malformed progress mark `{}`", String::from_utf8_lossy(value));
        let text = std::str::from_utf8(value).map_err(|_| bad())?;
        let mut parts = text.splitn(3, '/');
        let (Some(p), Some(n), Some(m)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let (producer, producers): (u32, u32) = (p.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        if producer >= producers {
            return Err(bad());
        }
        let mark = match m {
            "idle" => Mark::Idle,
            "end" => Mark::End,
            t => Mark::Watermark(t.parse().map_err(|_| bad())?),
        };
        Ok((producer, producers, mark))
    }
}

/// The last mark of every producer heard from (what a checkpoint keeps).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerMarks {
    /// How many producers write the stream (0: none heard yet).
    pub producers: u32,
    /// Each producer's last mark (saved as `[producer, mark]` pairs: a
    /// checkpoint's source positions cannot have number-keyed maps).
    #[serde(with = "pairs")]
    pub last: BTreeMap<u32, Mark>,
}

mod pairs {
    use super::Mark;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(map: &BTreeMap<u32, Mark>, s: S) -> Result<S::Ok, S::Error> {
        map.iter().collect::<Vec<_>>().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<u32, Mark>, D::Error> {
        Ok(Vec::<(u32, Mark)>::deserialize(d)?.into_iter().collect())
    }
}

/// The watermark derived from the producers' marks.
#[derive(Debug, Clone)]
pub struct MarkedWatermarks {
    marks: ProducerMarks,
    inputs: InputWatermarks,
    reported: Timestamp,
    reported_idle: bool,
}

impl MarkedWatermarks {
    /// Continues from `marks` (saved by a checkpoint, or the default).
    pub fn new(marks: ProducerMarks) -> MarkedWatermarks {
        let mut w = MarkedWatermarks {
            inputs: InputWatermarks::new(marks.producers as usize),
            marks: ProducerMarks { producers: marks.producers, last: BTreeMap::new() },
            reported: Timestamp::MIN,
            reported_idle: false,
        };
        for (p, m) in marks.last {
            w.apply(p, m);
        }
        w
    }

    /// `producer` of `producers` says `mark`. Fails if producers disagree
    /// on their number (the input topic's partitions changed).
    pub fn observe(&mut self, producer: u32, producers: u32, mark: Mark) -> Result<(), String> {
        if self.marks.producers == 0 {
            self.marks.producers = producers;
            self.inputs = InputWatermarks::new(producers as usize);
        } else if producers != self.marks.producers {
            return Err(format!(
                "producer {producer} counts {producers} producers, earlier marks {} (did the input topic gain partitions?)",
                self.marks.producers
            ));
        }
        self.apply(producer, mark);
        Ok(())
    }

    fn apply(&mut self, producer: u32, mark: Mark) {
        if self.marks.last.get(&producer) == Some(&Mark::End) {
            return;
        }
        self.marks.last.insert(producer, mark);
        let i = producer as usize;
        match mark {
            Mark::Watermark(t) => drop(self.inputs.advance(i, t)),
            Mark::Idle => drop(self.inputs.set_idle(i)),
            Mark::End => drop(self.inputs.end(i)),
        }
    }

    /// What changed since the last poll: a watermark that advanced (short
    /// of the end, which the stream's end implies), or going idle.
    pub fn poll(&mut self) -> WatermarkUpdate {
        let current = self.inputs.current();
        if current > self.reported && current != Timestamp::MAX {
            self.reported = current;
            self.reported_idle = false;
            return WatermarkUpdate::Advance(current);
        }
        let idle = self.marks.producers > 0 && self.inputs.is_idle();
        if idle != self.reported_idle {
            self.reported_idle = idle;
            if idle {
                return WatermarkUpdate::Idle;
            }
        }
        WatermarkUpdate::None
    }

    /// Whether every producer ended.
    pub fn ended(&self) -> bool {
        self.marks.producers > 0
            && self.marks.last.len() == self.marks.producers as usize
            && self.marks.last.values().all(|m| *m == Mark::End)
    }

    /// The marks, for a checkpoint.
    pub fn marks(&self) -> &ProducerMarks {
        &self.marks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_and_bad_ones_are_refused() {
        for m in [Mark::Watermark(-5), Mark::Watermark(1_700_000_000_000), Mark::Idle, Mark::End] {
            assert_eq!(Mark::decode(m.encode(2, 4).as_bytes()), Ok((2, 4, m)));
        }
        for bad in ["", "1/2", "2/2/5", "x/2/5", "1/2/soon", "1/2/5/6"] {
            assert!(Mark::decode(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn unheard_producers_hold_the_watermark_back() {
        let mut w = MarkedWatermarks::new(ProducerMarks::default());
        assert_eq!(w.poll(), WatermarkUpdate::None);
        w.observe(0, 3, Mark::Watermark(100)).unwrap();
        w.observe(1, 3, Mark::Watermark(50)).unwrap();
        assert_eq!(w.poll(), WatermarkUpdate::None, "producer 2 has not spoken");
        w.observe(2, 3, Mark::Idle).unwrap();
        assert_eq!(w.poll(), WatermarkUpdate::Advance(50));
        assert_eq!(w.poll(), WatermarkUpdate::None);
        w.observe(1, 3, Mark::End).unwrap();
        assert_eq!(w.poll(), WatermarkUpdate::Advance(100));
        w.observe(1, 3, Mark::Watermark(7)).unwrap();
        assert!(!w.ended(), "a mark after the end is ignored");
        w.observe(0, 3, Mark::Idle).unwrap();
        assert_eq!(w.poll(), WatermarkUpdate::Idle);
        assert_eq!(w.poll(), WatermarkUpdate::None);
        assert!(w.observe(0, 4, Mark::End).is_err());
        w.observe(0, 3, Mark::End).unwrap();
        w.observe(2, 3, Mark::End).unwrap();
        assert!(w.ended());
        assert_eq!(w.poll(), WatermarkUpdate::None, "the end is implied by the stream's end");
    }

    #[test]
    fn a_restored_stream_continues_where_its_marks_were() {
        let mut w = MarkedWatermarks::new(ProducerMarks::default());
        w.observe(0, 2, Mark::Watermark(10)).unwrap();
        w.observe(1, 2, Mark::End).unwrap();
        let saved = w.marks().clone();
        let json = serde_json::to_string(&saved).unwrap();
        let mut r = MarkedWatermarks::new(serde_json::from_str(&json).unwrap());
        assert_eq!(r.poll(), WatermarkUpdate::Advance(10));
        r.observe(0, 2, Mark::End).unwrap();
        assert!(r.ended());
    }

    /// Oracle: after every mark, the reported watermark is the running
    /// maximum of the minimum over live, active producers, computed from
    /// scratch (an unheard producer counts as the earliest time).
    #[test]
    fn matches_a_from_scratch_computation() {
        let mut seed = 7u64;
        let mut next = move |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _ in 0..300 {
            let n = 1 + next(4) as usize;
            let mut w = MarkedWatermarks::new(ProducerMarks::default());
            let (mut marks, mut idle, mut ended) = (vec![i64::MIN; n], vec![false; n], vec![false; n]);
            let (mut reported, mut expected) = (i64::MIN, i64::MIN);
            for _ in 0..40 {
                let p = next(n as u64) as usize;
                let mark = match next(10) {
                    0 => Mark::End,
                    1 => Mark::Idle,
                    _ => Mark::Watermark(next(1000) as i64),
                };
                w.observe(p as u32, n as u32, mark).unwrap();
                if !ended[p] {
                    match mark {
                        Mark::End => ended[p] = true,
                        Mark::Idle => idle[p] = true,
                        Mark::Watermark(t) => (marks[p], idle[p]) = (marks[p].max(t), false),
                    }
                }
                let live: Vec<usize> = (0..n).filter(|&i| !ended[i]).collect();
                let active = live.iter().filter(|&&i| !idle[i]).map(|&i| marks[i]).min();
                let all_idle = live.iter().map(|&i| marks[i]).max();
                if let Some(m) = active.or(all_idle).filter(|_| !live.is_empty()) {
                    expected = expected.max(m);
                }
                if let WatermarkUpdate::Advance(t) = w.poll() {
                    reported = t;
                }
                assert_eq!(reported, expected);
                assert_eq!(w.ended(), live.is_empty());
            }
        }
    }
}
