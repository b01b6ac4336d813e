//! A subtask's watermark is the minimum of its inputs' watermarks, and it
//! only moves forward.

use crate::types::Timestamp;

/// Watermarks of a task's inputs and the task's own, derived watermark.
#[derive(Debug, Clone)]
pub struct InputWatermarks {
    marks: Vec<Timestamp>,
    ended: Vec<bool>,
    current: Timestamp,
}

impl InputWatermarks {
    /// `inputs` inputs, none with a watermark yet.
    pub fn new(inputs: usize) -> Self {
        InputWatermarks { marks: vec![Timestamp::MIN; inputs], ended: vec![false; inputs], current: Timestamp::MIN }
    }

    /// The task's watermark.
    pub fn current(&self) -> Timestamp {
        self.current
    }

    /// Input `input` reached `watermark`; returns the task's new watermark
    /// if it advanced. A watermark lower than an input's previous one is
    /// ignored (watermarks never go back).
    pub fn advance(&mut self, input: usize, watermark: Timestamp) -> Option<Timestamp> {
        if watermark > self.marks[input] {
            self.marks[input] = watermark;
        }
        self.recompute()
    }

    /// Input `input` ended: it no longer holds the watermark back. Returns
    /// the new watermark if it advanced (`Timestamp::MAX` once all ended).
    pub fn end(&mut self, input: usize) -> Option<Timestamp> {
        self.ended[input] = true;
        self.recompute()
    }

    fn recompute(&mut self) -> Option<Timestamp> {
        let min =
            self.marks.iter().zip(&self.ended).filter(|(_, e)| !**e).map(|(m, _)| *m).min().unwrap_or(Timestamp::MAX);
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

    /// Oracle: the result is always the running maximum of the minimum over
    /// live inputs, computed from scratch.
    #[test]
    fn matches_a_from_scratch_computation() {
        let mut seed = 99u64;
        let mut next = move |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            (seed >> 33) % n
        };
        for _ in 0..100 {
            let n = 1 + next(5) as usize;
            let mut w = InputWatermarks::new(n);
            let (mut marks, mut ended, mut emitted) = (vec![i64::MIN; n], vec![false; n], i64::MIN);
            for _ in 0..50 {
                let i = next(n as u64) as usize;
                let got = if next(10) == 0 {
                    ended[i] = true;
                    w.end(i)
                } else {
                    let m = next(1000) as i64;
                    marks[i] = marks[i].max(m);
                    w.advance(i, m)
                };
                let min = (0..n).filter(|&j| !ended[j]).map(|j| marks[j]).min().unwrap_or(i64::MAX);
                let expected = (min > emitted).then_some(min);
                emitted = emitted.max(min);
                assert_eq!(got, expected);
            }
        }
    }
}
