//! A task's watermark is the minimum of its inputs' watermarks, ignoring
//! inputs that ended or declared themselves idle, and it only moves forward.
//! Once every input is idle, nothing holds back the watermarks they reached:
//! the task's watermark is their maximum (as Flink's `StatusWatermarkValve`
//! does), whatever order the inputs went idle in.

use crate::types::Timestamp;

/// Watermarks of a task's inputs and the task's own, derived watermark.
#[derive(Debug, Clone)]
pub struct InputWatermarks {
    marks: Vec<Timestamp>,
    ended: Vec<bool>,
    idle: Vec<bool>,
    current: Timestamp,
}

impl InputWatermarks {
    /// `inputs` inputs, none with a watermark yet.
    pub fn new(inputs: usize) -> Self {
        InputWatermarks {
            marks: vec![Timestamp::MIN; inputs],
            ended: vec![false; inputs],
            idle: vec![false; inputs],
            current: Timestamp::MIN,
        }
    }

    /// The task's watermark.
    pub fn current(&self) -> Timestamp {
        self.current
    }

    /// Whether every input that has not ended is idle (then the task is idle too).
    pub fn is_idle(&self) -> bool {
        let live: Vec<usize> = (0..self.marks.len()).filter(|&i| !self.ended[i]).collect();
        !live.is_empty() && live.iter().all(|&i| self.idle[i])
    }

    /// Input `input` reached `watermark` (and is active); returns the task's
    /// new watermark if it advanced. An input going back is ignored.
    pub fn advance(&mut self, input: usize, watermark: Timestamp) -> Option<Timestamp> {
        self.idle[input] = false;
        if watermark > self.marks[input] {
            self.marks[input] = watermark;
        }
        self.recompute()
    }

    /// Input `input` sent data: it is active again (the watermark cannot go
    /// back, so this never advances it).
    pub fn data(&mut self, input: usize) {
        self.idle[input] = false;
    }

    /// Input `input` is idle; returns the new watermark if ignoring it
    /// advanced it (the inputs' maximum when it was the last active one).
    pub fn set_idle(&mut self, input: usize) -> Option<Timestamp> {
        self.idle[input] = true;
        self.recompute()
    }

    /// Input `input` ended: it no longer holds the watermark back. Returns
    /// the new watermark if it advanced (`Timestamp::MAX` once all ended).
    pub fn end(&mut self, input: usize) -> Option<Timestamp> {
        self.ended[input] = true;
        self.recompute()
    }

    fn recompute(&mut self) -> Option<Timestamp> {
        let live = (0..self.marks.len()).filter(|&i| !self.ended[i]);
        let active: Vec<usize> = live.clone().filter(|&i| !self.idle[i]).collect();
        let min = if live.clone().next().is_none() {
            Timestamp::MAX
        } else if active.is_empty() {
            live.map(|i| self.marks[i]).max().unwrap_or(Timestamp::MIN)
        } else {
            active.iter().map(|&i| self.marks[i]).min().unwrap_or(Timestamp::MIN)
        };
        (min > self.current).then(|| {
            self.current = min;
            min
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_over_inputs_only_forward() {
        let mut w = InputWatermarks::new(3);
        assert_eq!(w.advance(0, 10), None);
        assert_eq!(w.advance(1, 5), None);
        assert_eq!(w.advance(2, 7), Some(5));
        assert_eq!(w.advance(1, 3), None, "an input going back is ignored");
        assert_eq!(w.advance(1, 20), Some(7));
        assert_eq!(w.end(2), Some(10));
        assert_eq!(w.end(0), Some(20));
        assert_eq!(w.end(1), Some(Timestamp::MAX));
        assert_eq!(w.current(), Timestamp::MAX);
    }

    #[test]
    fn idle_inputs_do_not_hold_the_watermark_back() {
        let mut w = InputWatermarks::new(2);
        assert_eq!(w.advance(0, 100), None);
        assert_eq!(w.set_idle(1), Some(100), "input 1 never spoke and went idle");
        assert!(!w.is_idle());
        assert_eq!(w.advance(0, 200), Some(200));
        assert_eq!(w.set_idle(0), None);
        assert!(w.is_idle(), "all inputs idle: the task is idle");
        w.data(1);
        assert!(!w.is_idle());
        assert_eq!(w.advance(1, 150), None, "back but behind: the watermark never goes back");
        assert_eq!(w.advance(1, 250), Some(250), "input 0 is still idle");
    }

    /// The input that reached the far watermark goes idle before the one
    /// holding it back: once both are idle, the far watermark counts (it was
    /// lost before, and a window waiting for it never fired).
    #[test]
    fn the_last_input_going_idle_releases_what_the_others_reached() {
        let mut w = InputWatermarks::new(2);
        assert_eq!(w.advance(0, 100), None);
        assert_eq!(w.advance(1, 50), Some(50));
        assert_eq!(w.advance(0, 100_000_000), None, "input 1 holds it back");
        assert_eq!(w.set_idle(0), None, "input 1 still holds it back");
        assert_eq!(w.set_idle(1), Some(100_000_000));
        assert!(w.is_idle());
        assert_eq!(w.advance(1, 60), None, "back, behind: the watermark never goes back");
    }

    /// Oracle: the result is always the running maximum of the minimum over
    /// live, active inputs (the maximum over live inputs when all are idle),
    /// computed from scratch.
    #[test]
    fn matches_a_from_scratch_computation() {
        let mut seed = 99u64;
        let mut next = move |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            (seed >> 33) % n
        };
        for _ in 0..200 {
            let n = 1 + next(5) as usize;
            let mut w = InputWatermarks::new(n);
            let (mut marks, mut ended, mut idle, mut current) =
                (vec![i64::MIN; n], vec![false; n], vec![false; n], i64::MIN);
            for _ in 0..60 {
                let i = next(n as u64) as usize;
                let got = match next(12) {
                    0 => {
                        ended[i] = true;
                        w.end(i)
                    }
                    1 | 2 => {
                        idle[i] = true;
                        w.set_idle(i)
                    }
                    _ => {
                        let m = next(1000) as i64;
                        marks[i] = marks[i].max(m);
                        idle[i] = false;
                        w.advance(i, m)
                    }
                };
                let live: Vec<usize> = (0..n).filter(|&j| !ended[j]).collect();
                let active: Vec<usize> = live.iter().copied().filter(|&j| !idle[j]).collect();
                let min = if live.is_empty() {
                    Some(i64::MAX)
                } else if active.is_empty() {
                    live.iter().map(|&j| marks[j]).max()
                } else {
                    active.iter().map(|&j| marks[j]).min()
                };
                let expected = min.filter(|&m| m > current);
                if let Some(m) = expected {
                    current = m;
                }
                assert_eq!(got, expected);
                assert_eq!(w.is_idle(), !live.is_empty() && active.is_empty());
            }
        }
    }
}
