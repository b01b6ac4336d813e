//! Bounds on every manifest number that multiplies work.
//!
//! A manifest is checked field by field as it is parsed; these bounds are a
//! second pass over the parsed [`Manifest`], because what they bound is a
//! product (a sliding window's size over its slide is the number of windows
//! every record is assigned to) or an operator's choice rather than a fact
//! of the format. Issue 17: `sliding: { size: 100000d, slide: 1ms }` passed
//! validation and assigned ~10^13 windows per record; under `weir serve` the
//! journal replayed the record at every restart, so the server crash-looped.
//!
//! The defaults are safe for a shared server and roomy for real pipelines
//! (Flink jobs rarely exceed a few dozen windows per record or a parallelism
//! of 128); `weir run` and `weir serve` both apply them, and the operator
//! may change each one (`--bound KEY=VALUE`, or the `bounds` section of the
//! server's config). A server re-checks stored manifests at every start, so
//! tightening a bound fails the pipelines beyond it with the reason instead
//! of running them.

use super::{parse_duration, CheckpointSpec, Manifest, ManifestError, StepKind, WindowKind};
use std::time::Duration;

/// The largest values a manifest may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// `parallelism`: subtasks per step (each a thread, and p² channels after a `key_by`).
    pub max_parallelism: u32,
    /// `max_parallelism`: key groups (each one a unit of state bookkeeping).
    pub max_key_groups: u32,
    /// Windows one record is assigned to: a sliding window's `size / slide`, rounded up.
    pub max_windows_per_record: u64,
    /// Records held by one count window (`count.size`) or between a global window's firings.
    pub max_count_window: u64,
    /// A session window's gap (a session stays open, holding its state, at least this long).
    pub max_session_gap: Duration,
    /// Records per batch handed to a function (each batch is held in memory).
    pub max_batch_size: usize,
    /// The shortest checkpoint interval (each checkpoint writes every subtask's state).
    pub min_checkpoint_interval: Duration,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_parallelism: 128,
            max_key_groups: 32_768,
            max_windows_per_record: 1_000,
            max_count_window: 100_000,
            max_session_gap: Duration::from_secs(7 * 24 * 3600),
            max_batch_size: 65_536,
            min_checkpoint_interval: Duration::from_millis(10),
        }
    }
}

/// A bound's name, for flags, config files and messages.
pub const NAMES: [&str; 7] = [
    "max_parallelism",
    "max_key_groups",
    "max_windows_per_record",
    "max_count_window",
    "max_session_gap",
    "max_batch_size",
    "min_checkpoint_interval",
];

impl Bounds {
    /// The defaults of `weir serve`: as [`Bounds::default`], but checkpoints
    /// at most every 100 ms (a tenant's checkpoints share the server's disk).
    pub fn hosted() -> Bounds {
        Bounds { min_checkpoint_interval: Duration::from_millis(100), ..Bounds::default() }
    }

    /// No bounds: for reading what a stored manifest refers to (which
    /// functions it calls), which must not depend on today's bounds.
    pub fn none() -> Bounds {
        Bounds {
            max_parallelism: u32::MAX,
            max_key_groups: u32::MAX,
            max_windows_per_record: u64::MAX,
            max_count_window: u64::MAX,
            max_session_gap: Duration::MAX,
            max_batch_size: usize::MAX,
            min_checkpoint_interval: Duration::ZERO,
        }
    }

    /// Sets the bound `name` from text (`max_session_gap=1d`).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let count = || value.trim().parse::<u64>().map_err(|_| format!("{name}: `{value}` is not a whole number"));
        let at_least_one = |n: u64| if n == 0 { Err(format!("{name}: must be at least 1")) } else { Ok(n) };
        let duration = || parse_duration(value.trim()).map_err(|e| format!("{name}: {e}"));
        let small = |n: u64| u32::try_from(n).map_err(|_| format!("{name}: {n} is too large"));
        match name {
            "max_parallelism" => self.max_parallelism = small(at_least_one(count()?)?)?,
            "max_key_groups" => self.max_key_groups = small(at_least_one(count()?)?)?.min(32_768),
            "max_windows_per_record" => self.max_windows_per_record = at_least_one(count()?)?,
            "max_count_window" => self.max_count_window = at_least_one(count()?)?,
            "max_session_gap" => self.max_session_gap = duration()?,
            "max_batch_size" => self.max_batch_size = at_least_one(count()?)? as usize,
            "min_checkpoint_interval" => self.min_checkpoint_interval = duration()?,
            other => return Err(format!("unknown bound `{other}` (expected one of: {})", NAMES.join(", "))),
        }
        Ok(())
    }

    /// Checks `m` against the bounds; the error names the field, its value and the bound.
    pub fn check(&self, m: &Manifest) -> Result<(), ManifestError> {
        let over = |at: &str, what: String, bound: String, name: &str| {
            Err(ManifestError::new(
                at,
                format!("{what} is above this server's bound of {bound} (`{name}`, set by the operator)"),
            ))
        };
        if m.parallelism > self.max_parallelism {
            return over("parallelism", m.parallelism.to_string(), self.max_parallelism.to_string(), "max_parallelism");
        }
        if m.max_parallelism > self.max_key_groups {
            return over(
                "max_parallelism",
                m.max_parallelism.to_string(),
                self.max_key_groups.to_string(),
                "max_key_groups",
            );
        }
        if m.batch_size > self.max_batch_size {
            return over("batch_size", m.batch_size.to_string(), self.max_batch_size.to_string(), "max_batch_size");
        }
        if let Some(CheckpointSpec { interval, .. }) = &m.checkpoint {
            if *interval < self.min_checkpoint_interval {
                return Err(ManifestError::new(
                    "checkpoint.interval",
                    format!(
                        "{interval:?} is below this server's minimum of {:?} (`min_checkpoint_interval`, set by the operator)",
                        self.min_checkpoint_interval
                    ),
                ));
            }
        }
        for step in &m.steps {
            let StepKind::Window(w) = &step.kind else { continue };
            let at = format!("steps[{}].window", step.index);
            match w.kind {
                WindowKind::Sliding { size, slide, .. } => {
                    let per_record = windows_per_record(size, slide);
                    if per_record > u128::from(self.max_windows_per_record) {
                        return over(
                            &format!("{at}.sliding"),
                            format!(
                                "size {size:?} over slide {slide:?} puts every record in {per_record} windows, which"
                            ),
                            self.max_windows_per_record.to_string(),
                            "max_windows_per_record",
                        );
                    }
                }
                WindowKind::Session { gap } if gap > self.max_session_gap => {
                    return over(
                        &format!("{at}.session.gap"),
                        format!("{gap:?}"),
                        format!("{:?}", self.max_session_gap),
                        "max_session_gap",
                    );
                }
                WindowKind::Count { size, .. } if size > self.max_count_window => {
                    return over(
                        &format!("{at}.count.size"),
                        size.to_string(),
                        self.max_count_window.to_string(),
                        "max_count_window",
                    );
                }
                WindowKind::Global { every } if every > self.max_count_window => {
                    return over(
                        &format!("{at}.global.trigger.count"),
                        every.to_string(),
                        self.max_count_window.to_string(),
                        "max_count_window",
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The most sliding windows of `size` starting every `slide` that contain
/// one instant: `ceil(size / slide)` in whole milliseconds, as the assigner
/// (`window::Assigner::Sliding`) counts them; `u128`, so no manifest overflows it.
pub fn windows_per_record(size: Duration, slide: Duration) -> u128 {
    let (size, slide) = (size.as_millis(), slide.as_millis().max(1));
    size.div_ceil(slide)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::Assigner;
    use std::path::Path;

    fn parse(text: &str, bounds: &Bounds) -> Result<Manifest, ManifestError> {
        Manifest::parse_within(text, Path::new("/m"), bounds)
    }

    const HEAD: &str = "name: w\nsource: { bids: { count: 3 } }\nsink: { stdout: {} }\n";

    #[test]
    fn a_sliding_window_of_ten_trillion_windows_per_record_is_refused() {
        // Issue 17: 2.8 GB and an abort on three bids; a crash loop under serve.
        let text = format!(
            "{HEAD}steps:\n  - key_by: {{ field: /auction }}\n  - window: {{ sliding: {{ size: 100000d, slide: 1ms }}, time: processing }}\n    aggregate: {{ builtin: count }}\n"
        );
        let e = parse(&text, &Bounds::default()).unwrap_err();
        assert_eq!(e.at, "steps[1].window.sliding");
        assert!(e.message.contains("8640000000000 windows"), "{e}");
        assert!(e.message.contains("`max_windows_per_record`"), "{e}");
        // The operator may allow it on purpose.
        let mut roomy = Bounds::default();
        roomy.set("max_windows_per_record", "10000000000000").unwrap();
        parse(&text, &roomy).unwrap();
    }

    #[test]
    fn every_number_that_multiplies_work_has_a_bound() {
        let b = Bounds::default();
        let window = |w: &str| {
            format!("{HEAD}steps:\n  - key_by: {{ field: /auction }}\n  - window: {w}\n    aggregate: {{ builtin: count }}\n")
        };
        for (text, at, name) in [
            (format!("{HEAD}parallelism: 129\nmax_parallelism: 256\n"), "parallelism", "max_parallelism"),
            (format!("{HEAD}batch_size: 65536\n").replace("65536", "65537"), "batch_size", "out of range"),
            (window("{ count: 100001 }"), "steps[1].window.count.size", "max_count_window"),
            (
                window("{ global: { trigger: { count: 100001 } } }"),
                "steps[1].window.global.trigger.count",
                "max_count_window",
            ),
            (window("{ session: 8d, time: processing }"), "steps[1].window.session.gap", "max_session_gap"),
        ] {
            let e = parse(&text, &b).unwrap_err();
            assert_eq!(e.at, at, "{text}");
            assert!(e.message.contains(name), "{text}: {e}");
        }
        let ckpt =
            format!("{HEAD}checkpoint: {{ dir: c, interval: 50ms }}\n").replace("stdout: {}", "file: { dir: o }");
        parse(&ckpt, &b).unwrap();
        let e = parse(&ckpt, &Bounds::hosted()).unwrap_err();
        assert_eq!(e.at, "checkpoint.interval");
        assert!(e.message.contains("`min_checkpoint_interval`"), "{e}");
        let mut few_groups = Bounds::default();
        few_groups.set("max_key_groups", "64").unwrap();
        let e = parse(&format!("{HEAD}max_parallelism: 128\n"), &few_groups).unwrap_err();
        assert!(e.message.contains("`max_key_groups`"), "{e}");
    }

    #[test]
    fn bounds_are_set_by_name_with_clear_errors() {
        let mut b = Bounds::default();
        b.set("max_session_gap", "1d").unwrap();
        assert_eq!(b.max_session_gap, Duration::from_secs(86_400));
        assert!(b.set("max_windows", "5").unwrap_err().contains("unknown bound `max_windows`"));
        assert!(b.set("max_count_window", "0").unwrap_err().contains("at least 1"));
        assert!(b.set("max_parallelism", "many").unwrap_err().contains("not a whole number"));
        assert!(b.set("min_checkpoint_interval", "soon").unwrap_err().contains("not a duration"));
    }

    #[test]
    fn windows_per_record_is_the_most_windows_the_assigner_gives_one_record() {
        // Oracle: the assigner itself, on random sizes, slides, offsets and timestamps.
        let mut rng = crate::test_rng::TestRng::new(0x9e37_79b9_7f4a_7c15);
        let mut next = |n: u64| rng.below(n);
        for _ in 0..500 {
            let slide = 1 + next(50) as i64;
            let size = slide + next(400) as i64;
            let offset = next(slide as u64) as i64;
            let assigner = Assigner::Sliding { size, slide, offset };
            let mut most = 0;
            for _ in 0..(2 * slide) {
                let mut out = Vec::new();
                assigner.assign(next(1 << 40) as i64, &mut out);
                most = most.max(out.len() as u128);
            }
            let bound = windows_per_record(Duration::from_millis(size as u64), Duration::from_millis(slide as u64));
            assert!(most <= bound, "size {size} slide {slide}: {most} > {bound}");
            // Over every residue modulo the slide, the bound is reached.
            let mut reached = 0;
            for ts in 0..slide {
                let mut out = Vec::new();
                assigner.assign(ts + (1 << 20), &mut out);
                reached = reached.max(out.len() as u128);
            }
            assert_eq!(reached, bound, "size {size} slide {slide}");
        }
    }
}
