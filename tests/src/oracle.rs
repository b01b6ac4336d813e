//! From-scratch computations of the bench workloads
//! (`shared/bench/README.md`), written from the spec, sharing no code with
//! the runtime, to check the engine's output against.

/// The bid lines of `gen_bids.py SEED N` (without newlines).
pub fn bids(seed: u64, n: u64) -> Vec<String> {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(GAMMA);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let channels = ["Apple", "Google", "Facebook", "Baidu", "Direct"];
    (0..n)
        .map(|i| {
            let r: Vec<u64> = (0..6).map(|_| next()).collect();
            let auction = 1000 + r[0] % 10_000;
            format!(
                "{{\"auction\":{auction},\"bidder\":{},\"price\":{},\"channel\":\"{}\",\"url\":\"https://www.example.com/a/{auction}/{:08x}\",\"ts\":{}}}",
                1 + r[1] % 100_000,
                100 + r[2] % 99_900,
                channels[(r[3] % 5) as usize],
                r[4] >> 32,
                1_700_000_000_000 + i - r[5] % 2001
            )
        })
        .collect()
}

fn field(bid: &serde_json::Value, name: &str) -> u64 {
    bid[name].as_u64().unwrap_or_else(|| panic!("bid without {name}: {bid}"))
}

/// q1: `auction,bidder,price_eur,ts`.
pub fn q1(line: &str) -> String {
    let bid: serde_json::Value = serde_json::from_str(line).expect("a bid");
    let v = field(&bid, "price") as f64 * 0.908;
    let k = (v * 1000.0).round() as u64;
    format!("{},{},{}.{:03},{}", field(&bid, "auction"), field(&bid, "bidder"), k / 1000, k % 1000, field(&bid, "ts"))
}

/// q2: `auction,price` of bids whose auction is a multiple of 123.
pub fn q2(line: &str) -> Option<String> {
    let bid: serde_json::Value = serde_json::from_str(line).expect("a bid");
    let auction = field(&bid, "auction");
    auction.is_multiple_of(123).then(|| format!("{auction},{}", field(&bid, "price")))
}

/// `lines` sorted bytewise (the bench compares sorted outputs).
pub fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

/// The windows `[start, start + size)` (starts aligned to `slide`) containing `ts`.
pub fn windows_of(ts: i64, size: i64, slide: i64) -> Vec<(i64, i64)> {
    let last = ts - ts.rem_euclid(slide);
    let mut out = Vec::new();
    let mut start = last;
    while start > ts - size {
        out.push((start, start + size));
        start -= slide;
    }
    out
}

/// q5 (`slide == size`, count) or q7 (sliding, max price) lines
/// `auction,window_end,value`, for bid streams where nothing is late (the
/// bench generator's jitter stays within the 2 s delay): a plain group-by.
pub fn windowed(bids: &[String], size: i64, slide: i64, max_price: bool) -> Vec<String> {
    let mut acc: std::collections::BTreeMap<(u64, i64), u64> = std::collections::BTreeMap::new();
    for b in bids {
        let bid: serde_json::Value = serde_json::from_str(b).expect("a bid");
        let (auction, price, ts) = (field(&bid, "auction"), field(&bid, "price"), field(&bid, "ts") as i64);
        for (_, end) in windows_of(ts, size, slide) {
            let e = acc.entry((auction, end)).or_insert(0);
            *e = if max_price { (*e).max(price) } else { *e + 1 };
        }
    }
    sorted(acc.into_iter().map(|((a, end), v)| format!("{a},{end},{v}")).collect())
}

/// A record of [`tumbling_with_lateness`]: key, timestamp, value.
pub type Keyed = (String, i64, i64);

/// Flink's event-time semantics for tumbling windows summing values,
/// simulated record by record (a watermark after every record, trailing the
/// largest timestamp by `delay` + 1): the emitted `key,window_end,sum` lines
/// (a window fires when the watermark reaches its end - 1, and fires again
/// for every record that still reaches it within `lateness`) and the late
/// records (those whose window was already cleaned up).
pub fn tumbling_with_lateness(records: &[Keyed], size: i64, delay: i64, lateness: i64) -> (Vec<String>, Vec<Keyed>) {
    use std::collections::{BTreeMap, BTreeSet};
    let mut acc: BTreeMap<(i64, String), i64> = BTreeMap::new();
    let mut fired: BTreeSet<i64> = BTreeSet::new();
    let (mut out, mut late) = (Vec::new(), Vec::new());
    let (mut wm, mut max_ts) = (i64::MIN, i64::MIN);
    let advance =
        |wm: i64, acc: &mut BTreeMap<(i64, String), i64>, fired: &mut BTreeSet<i64>, out: &mut Vec<String>| {
            for ((end, k), v) in acc.iter() {
                if end - 1 <= wm && !fired.contains(end) {
                    out.push(format!("{k},{end},{v}"));
                }
            }
            let due: Vec<i64> = acc.keys().map(|(e, _)| *e).filter(|e| e - 1 <= wm).collect();
            fired.extend(due);
            acc.retain(|(end, _), _| end - 1 + lateness > wm);
            fired.retain(|end| end - 1 + lateness > wm);
        };
    for (k, ts, v) in records {
        let start = ts - ts.rem_euclid(size);
        let end = start + size;
        if end - 1 + lateness <= wm {
            late.push((k.clone(), *ts, *v));
        } else {
            let sum = acc.entry((end, k.clone())).or_insert(0);
            *sum += v;
            if end - 1 <= wm {
                out.push(format!("{k},{end},{sum}"));
                fired.insert(end);
            }
        }
        max_ts = max_ts.max(*ts);
        if max_ts - delay - 1 > wm {
            wm = max_ts - delay - 1;
            advance(wm, &mut acc, &mut fired, &mut out);
        }
    }
    advance(i64::MAX, &mut acc, &mut fired, &mut out);
    (sorted(out), late)
}

/// The lines of `got` that are not in `want`, or more often than there:
/// strays and duplicates (what no reader may ever see).
pub fn unexpected<'a>(want: &[String], got: &'a [String]) -> Vec<&'a String> {
    let mut left: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for l in want {
        *left.entry(l).or_default() += 1;
    }
    got.iter()
        .filter(|v| match left.get_mut(v.as_str()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn first_bid_of_seed_42_matches_the_spec_example() {
        assert_eq!(
            super::bids(42, 1)[0],
            r#"{"auction":6413,"bidder":92292,"price":3358,"channel":"Direct","url":"https://www.example.com/a/6413/09bc585a","ts":1699999998158}"#
        );
        assert_eq!(super::q1(&super::bids(42, 1)[0]), "6413,92292,3049.064,1699999998158");
    }
}
