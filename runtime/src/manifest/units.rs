//! Durations (`500ms`, `2s`, `1m`) and sizes (`64MiB`) as written in manifests.

use std::time::Duration;

/// Parses a duration: a whole number followed by `ms`, `s`, `m`, `h` or `d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("`{text}` is not a duration: expected a whole number followed by ms, s, m, h or d (for example 500ms or 2s)")
    };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let ms = match unit.trim() {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" | "min" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => return Err(bad()),
    };
    // Durations take part in event-time arithmetic: keep them within ±2^53 ms as timestamps are.
    ms.filter(|&ms| ms <= 1 << 53)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too long a duration (at most about 285,000 years)"))
}

/// Parses a size: a whole number of bytes, optionally followed by B, KB, MB,
/// GB (powers of 1000) or KiB, MiB, GiB (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || {
        format!("`{text}` is not a size: expected a whole number of bytes, optionally with KiB, MiB, GiB, KB, MB or GB (for example 64MiB)")
    };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(factor).ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [("500ms", 500), ("2s", 2_000), ("1m", 60_000), ("3 h", 10_800_000), ("1d", 86_400_000), ("0s", 0)];
        for (t, ms) in ok {
            assert_eq!(parse_duration(t).unwrap(), Duration::from_millis(ms), "{t}");
        }
        for t in ["", "5", "5x", "s", "-1s", "1.5s", "99999999999999999999d"] {
            assert!(parse_duration(t).is_err(), "{t}");
        }
        assert_eq!(
            parse_duration("10x").unwrap_err(),
            "`10x` is not a duration: expected a whole number followed by ms, s, m, h or d (for example 500ms or 2s)"
        );
    }

    #[test]
    fn sizes() {
        for (t, n) in [("64MiB", 64 << 20), ("1GiB", 1 << 30), ("10MB", 10_000_000), ("4096", 4096), ("1 KiB", 1024)] {
            assert_eq!(parse_size(t).unwrap(), n, "{t}");
        }
        for t in ["", "MiB", "1.5GiB", "12 parsecs"] {
            assert!(parse_size(t).is_err(), "{t}");
        }
    }
}
