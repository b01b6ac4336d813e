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
