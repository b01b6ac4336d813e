//! The deterministic bid generator of the bench (`shared/bench/gen/gen_bids.py`,
//! byte for byte): SplitMix64 seeded with the seed, six draws per event.
//!
//! Event `i` depends only on the seed and `i` (the generator state after `i`
//! events is `seed + 6 i γ`), so splits generate disjoint index ranges in
//! parallel. Record timestamps are the events' `ts`.

use super::{Read, Source};
use crate::checkpoint::SourcePosition;
use crate::types::BatchWriter;
use std::io;
use std::time::{Duration, Instant};

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
const CHANNELS: [&str; 5] = ["Apple", "Google", "Facebook", "Baidu", "Direct"];
const BASE_TS: u64 = 1_700_000_000_000;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Writes event `i` of `seed` (without newline) into `out`; returns its `ts`.
pub fn write_bid(seed: u64, i: u64, out: &mut Vec<u8>) -> u64 {
    let mut state = seed.wrapping_add(i.wrapping_mul(6).wrapping_mul(GAMMA));
    let mut r = [0u64; 6];
    for x in &mut r {
        state = state.wrapping_add(GAMMA);
        *x = mix(state);
    }
    let auction = 1000 + r[0] % 10_000;
    let ts = BASE_TS + i - r[5] % 2001;
    out.extend_from_slice(b"{\"auction\":");
    push_u64(out, auction);
    out.extend_from_slice(b",\"bidder\":");
    push_u64(out, 1 + r[1] % 100_000);
    out.extend_from_slice(b",\"price\":");
    push_u64(out, 100 + r[2] % 99_900);
    out.extend_from_slice(b",\"channel\":\"");
    out.extend_from_slice(CHANNELS[(r[3] % 5) as usize].as_bytes());
    out.extend_from_slice(b"\",\"url\":\"https://www.example.com/a/");
    push_u64(out, auction);
    out.push(b'/');
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let h = (r[4] >> 32) as u32;
    for k in (0..8).rev() {
        out.push(HEX[((h >> (4 * k)) & 0xf) as usize]);
    }
    out.extend_from_slice(b"\",\"ts\":");
    push_u64(out, ts);
    out.push(b'}');
    ts
}

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Events `split`, `split + splits`, `split + 2 splits`, ... of a seed,
/// optionally paced. Striding (rather than contiguous ranges) keeps every
/// split at the same point of event time.
pub struct BidSource {
    seed: u64,
    next: u64,
    stride: u64,
    end: u64,
    emitted: u64,
    pace: Option<(Instant, f64)>,
}

impl BidSource {
    /// Split `split` of `splits` of `count` events (`None`: unbounded), at
    /// most `rate` events per second in all.
    pub fn new(seed: u64, count: Option<u64>, rate: Option<u64>, split: u32, splits: u32) -> BidSource {
        let pace = rate.map(|r| (Instant::now(), r as f64 / f64::from(splits)));
        BidSource {
            seed,
            next: u64::from(split),
            stride: u64::from(splits),
            end: count.unwrap_or(u64::MAX),
            emitted: 0,
            pace,
        }
    }
}

impl BidSource {
    /// Resumes a split at event `next` (a checkpointed position).
    pub fn resume(seed: u64, count: Option<u64>, rate: Option<u64>, next: u64, stride: u64) -> BidSource {
        let pace = rate.map(|r| (Instant::now(), r as f64 / stride as f64));
        BidSource { seed, next, stride: stride.max(1), end: count.unwrap_or(u64::MAX), emitted: 0, pace }
    }
}

impl Source for BidSource {
    fn position(&self) -> Option<SourcePosition> {
        Some(SourcePosition::Bids { next: self.next, stride: self.stride })
    }

    fn read(&mut self, max: usize) -> io::Result<Read> {
        if self.next >= self.end {
            return Ok(Read::End);
        }
        let mut n = max as u64;
        if let Some((start, rate)) = self.pace {
            let due = (start.elapsed().as_secs_f64() * rate) as u64;
            if due <= self.emitted {
                let wait = (self.emitted + 1) as f64 / rate - start.elapsed().as_secs_f64();
                std::thread::sleep(Duration::from_secs_f64(wait.clamp(0.0, 0.1)));
                return Ok(Read::Idle);
            }
            n = n.min(due - self.emitted);
        }
        let mut out = BatchWriter::with_capacity(n as usize * 150);
        let mut timestamps = Vec::with_capacity(n as usize);
        while out.len() < n as usize && self.next < self.end {
            let (seed, i) = (self.seed, self.next);
            timestamps.push(out.push_with(0, None, |v| write_bid(seed, i, v)) as i64);
            self.next = self.next.saturating_add(self.stride);
        }
        self.emitted += timestamps.len() as u64;
        let mut batch = out.finish();
        batch.rewrite_timestamps(&timestamps);
        Ok(Read::Batch(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seed: u64, i: u64) -> String {
        let mut v = Vec::new();
        write_bid(seed, i, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn matches_gen_bids_py() {
        // `python3 shared/bench/gen/gen_bids.py 42 3` and `... 7 1`.
        assert_eq!(
            line(42, 0),
            r#"{"auction":6413,"bidder":92292,"price":3358,"channel":"Direct","url":"https://www.example.com/a/6413/09bc585a","ts":1699999998158}"#
        );
        assert_eq!(line(42, 1), GEN_42_1);
        assert_eq!(line(42, 2), GEN_42_2);
        assert_eq!(line(7, 0), GEN_7_0);
    }

    #[test]
    fn splits_cover_every_event_once_and_set_timestamps() {
        let mut all = Vec::new();
        for split in 0..3u32 {
            let mut s = BidSource::new(42, Some(1000), None, split, 3);
            while let Read::Batch(b) = s.read(128).unwrap() {
                for r in b.iter() {
                    let text = String::from_utf8(r.value.to_vec()).unwrap();
                    assert!(text.ends_with(&format!("\"ts\":{}}}", r.timestamp)));
                    all.push(text);
                }
            }
        }
        let mut expected: Vec<String> = (0..1000).map(|i| line(42, i)).collect();
        all.sort();
        expected.sort();
        assert_eq!(all, expected);
    }

    const GEN_42_1: &str = r#"{"auction":5925,"bidder":75909,"price":69905,"channel":"Direct","url":"https://www.example.com/a/5925/3474724a","ts":1699999999133}"#;
    const GEN_42_2: &str = r#"{"auction":2398,"bidder":21496,"price":93456,"channel":"Apple","url":"https://www.example.com/a/2398/1a83d752","ts":1699999999132}"#;
    const GEN_7_0: &str = r#"{"auction":5487,"bidder":55805,"price":6346,"channel":"Baidu","url":"https://www.example.com/a/5487/73d33b66","ts":1699999999103}"#;
}
