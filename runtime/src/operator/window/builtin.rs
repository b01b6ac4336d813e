//! Builtin aggregates in native code: `count`, `sum`, `min`, `max`, `avg`
//! over a JSON field. Integer inputs stay exact integers (a sum that would
//! overflow switches to floating point); any fractional input makes the
//! result floating point.
//!
//! Accumulators are small byte strings kept in the state backend:
//! `count` is an `i64`; `sum`, `min` and `max` a tag byte (0 integer,
//! 1 float) and 8 bytes; `avg` an `f64` sum and an `i64` count (16 bytes,
//! so every accumulator fits the state backend's inline value).

use crate::state::StateValue;
use crate::types::TimeWindow;
use weir_json::{Kind, Pointer};

pub use crate::manifest::{BuiltinKind, ResultFormat};

/// A number taken from a record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// An integer.
    Int(i64),
    /// Anything else.
    Float(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    fn encode(self, out: &mut impl Extend<u8>) {
        match self {
            Num::Int(i) => {
                out.extend([0]);
                out.extend(i.to_le_bytes());
            }
            Num::Float(f) => {
                out.extend([1]);
                out.extend(f.to_le_bytes());
            }
        }
    }

    fn decode(b: &[u8]) -> Num {
        let v: [u8; 8] = b[1..9].try_into().expect("9-byte number");
        if b[0] == 0 {
            Num::Int(i64::from_le_bytes(v))
        } else {
            Num::Float(f64::from_le_bytes(v))
        }
    }

    fn write(self, out: &mut Vec<u8>) {
        match self {
            Num::Int(i) => write_i64(out, i),
            Num::Float(f) if f.is_finite() => {
                use std::io::Write;
                let _ = write!(out, "{f}");
            }
            Num::Float(_) => out.extend_from_slice(b"null"),
        }
    }

    fn add(self, other: Num) -> Num {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => a.checked_add(b).map_or(Num::Float(a as f64 + b as f64), Num::Int),
            (a, b) => Num::Float(a.as_f64() + b.as_f64()),
        }
    }

    fn less(self, other: Num) -> bool {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => a < b,
            (a, b) => a.as_f64() < b.as_f64(),
        }
    }
}

/// The sum and count of an `avg` accumulator.
fn avg_parts(acc: &[u8]) -> (f64, i64) {
    (
        f64::from_le_bytes(acc[..8].try_into().expect("8 bytes")),
        i64::from_le_bytes(acc[8..16].try_into().expect("8 bytes")),
    )
}

/// Appends the decimal digits of `v`.
pub(crate) fn write_i64(out: &mut Vec<u8>, v: i64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[i..]);
}

/// A builtin aggregate over a field.
#[derive(Debug, Clone)]
pub struct Builtin {
    kind: BuiltinKind,
    field: Option<Pointer>,
    format: ResultFormat,
}

impl Builtin {
    /// `kind` over `field` (required for everything but `count`).
    pub fn new(kind: BuiltinKind, field: Option<Pointer>, format: ResultFormat) -> Self {
        Builtin { kind, field, format }
    }

    /// The aggregate.
    pub fn kind(&self) -> BuiltinKind {
        self.kind
    }

    /// The number a record contributes (`None` for `count`), or why it has none.
    pub fn value_of(&self, value: &[u8]) -> Result<Option<Num>, String> {
        let Some(p) = &self.field else {
            return Ok(None);
        };
        let mut found = [None];
        weir_json::extract(value, std::slice::from_ref(p), &mut found)
            .map_err(|e| format!("cannot aggregate {p}: {e}"))?;
        let v = found[0].ok_or_else(|| format!("aggregate field {p} is missing"))?;
        if v.kind() != Kind::Number {
            return Err(format!("aggregate field {p} is a {}, expected a number", v.kind().name()));
        }
        Ok(Some(match v.as_i64() {
            Some(i) => Num::Int(i),
            None => Num::Float(v.as_f64().ok_or_else(|| format!("aggregate field {p} is not a finite number"))?),
        }))
    }

    /// Folds `value` into `acc` (empty when `existed` is false).
    pub fn add(&self, acc: &mut StateValue, existed: bool, value: Option<Num>) {
        let v = value.unwrap_or(Num::Int(1));
        match self.kind {
            BuiltinKind::Count => {
                let n = if existed { i64::from_le_bytes(acc[..8].try_into().expect("8 bytes")) } else { 0 };
                acc.clear();
                acc.extend_from_slice(&(n + 1).to_le_bytes());
            }
            BuiltinKind::Sum | BuiltinKind::Min | BuiltinKind::Max => {
                let next = if !existed {
                    v
                } else {
                    let cur = Num::decode(acc);
                    match self.kind {
                        BuiltinKind::Sum => cur.add(v),
                        BuiltinKind::Min if v.less(cur) => v,
                        BuiltinKind::Max if cur.less(v) => v,
                        _ => cur,
                    }
                };
                acc.clear();
                next.encode(acc);
            }
            BuiltinKind::Avg => {
                let (sum, count) = if existed { avg_parts(acc) } else { (0.0, 0) };
                acc.clear();
                acc.extend_from_slice(&(sum + v.as_f64()).to_le_bytes());
                acc.extend_from_slice(&(count + 1).to_le_bytes());
            }
        }
    }

    /// Merges two accumulators (session windows).
    pub fn merge(&self, a: &[u8], b: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(17);
        match self.kind {
            BuiltinKind::Count => {
                let n = |x: &[u8]| i64::from_le_bytes(x[..8].try_into().expect("8 bytes"));
                out.extend_from_slice(&(n(a) + n(b)).to_le_bytes());
            }
            BuiltinKind::Sum => Num::decode(a).add(Num::decode(b)).encode(&mut out),
            BuiltinKind::Min | BuiltinKind::Max => {
                let (x, y) = (Num::decode(a), Num::decode(b));
                let pick_y = if self.kind == BuiltinKind::Min { y.less(x) } else { x.less(y) };
                (if pick_y { y } else { x }).encode(&mut out);
            }
            BuiltinKind::Avg => {
                let ((sa, ca), (sb, cb)) = (avg_parts(a), avg_parts(b));
                out.extend_from_slice(&(sa + sb).to_le_bytes());
                out.extend_from_slice(&(ca + cb).to_le_bytes());
            }
        }
        out
    }

    /// Merges `other` into `acc` in place.
    pub fn merge_into(&self, acc: &mut StateValue, other: &[u8]) {
        let merged = self.merge(acc, other);
        acc.clear();
        acc.extend_from_slice(&merged);
    }

    /// The result an accumulator stands for.
    pub fn result(&self, acc: &[u8]) -> Num {
        match self.kind {
            BuiltinKind::Count => Num::Int(i64::from_le_bytes(acc[..8].try_into().expect("8 bytes"))),
            BuiltinKind::Sum | BuiltinKind::Min | BuiltinKind::Max => Num::decode(acc),
            BuiltinKind::Avg => {
                let (sum, count) = avg_parts(acc);
                Num::Float(sum / count as f64)
            }
        }
    }

    /// Writes the output value for `key` in `window` (`None`: count and
    /// global windows, which have no time window).
    pub fn format(&self, key: &[u8], window: Option<TimeWindow>, acc: &[u8], out: &mut Vec<u8>) {
        let result = self.result(acc);
        match self.format {
            ResultFormat::Csv => {
                out.extend_from_slice(key);
                out.push(b',');
                if let Some(w) = window {
                    write_i64(out, w.end);
                    out.push(b',');
                }
                result.write(out);
            }
            ResultFormat::Json => {
                out.extend_from_slice(b"{\"key\":");
                let key_text = String::from_utf8_lossy(key);
                let _ = serde_json::to_writer(&mut *out, &key_text);
                if let Some(w) = window {
                    out.extend_from_slice(b",\"window_start\":");
                    write_i64(out, w.start);
                    out.extend_from_slice(b",\"window_end\":");
                    write_i64(out, w.end);
                }
                out.extend_from_slice(b",\"");
                out.extend_from_slice(self.kind.name().as_bytes());
                out.extend_from_slice(b"\":");
                result.write(out);
                out.push(b'}');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: BuiltinKind, values: &[&str]) -> String {
        let b = Builtin::new(kind, Some(Pointer::parse("/v").unwrap()), ResultFormat::Csv);
        let mut acc = StateValue::new();
        for (i, v) in values.iter().enumerate() {
            let n = b.value_of(format!("{{\"v\":{v}}}").as_bytes()).unwrap();
            b.add(&mut acc, i > 0, n);
        }
        let mut out = Vec::new();
        b.format(b"k", None, &acc, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn integer_and_float_results() {
        assert_eq!(run(BuiltinKind::Count, &["1", "2", "3"]), "k,3");
        assert_eq!(run(BuiltinKind::Sum, &["1", "2", "3"]), "k,6");
        assert_eq!(run(BuiltinKind::Sum, &["1", "2.5"]), "k,3.5");
        assert_eq!(run(BuiltinKind::Sum, &["9223372036854775807", "1"]), "k,9223372036854776000");
        assert_eq!(run(BuiltinKind::Min, &["5", "-2", "7"]), "k,-2");
        assert_eq!(run(BuiltinKind::Max, &["5", "7.5", "7"]), "k,7.5");
        assert_eq!(run(BuiltinKind::Avg, &["1", "2"]), "k,1.5");
        assert_eq!(run(BuiltinKind::Avg, &["4"]), "k,4");
        assert_eq!(run(BuiltinKind::Sum, &["-5", "-7"]), "k,-12");
        assert_eq!(run(BuiltinKind::Min, &["-9223372036854775808"]), "k,-9223372036854775808");
    }

    #[test]
    fn merge_equals_adding_everything_to_one() {
        for kind in [BuiltinKind::Count, BuiltinKind::Sum, BuiltinKind::Min, BuiltinKind::Max, BuiltinKind::Avg] {
            let b = Builtin::new(kind, Some(Pointer::parse("/v").unwrap()), ResultFormat::Csv);
            let acc_of = |vals: &[i64]| {
                let mut acc = StateValue::new();
                for (i, v) in vals.iter().enumerate() {
                    b.add(&mut acc, i > 0, Some(Num::Int(*v)));
                }
                acc
            };
            assert_eq!(b.merge(&acc_of(&[3, 9]), &acc_of(&[-4, 2, 8])), acc_of(&[3, 9, -4, 2, 8]).to_vec(), "{kind:?}");
        }
    }

    #[test]
    fn values_that_are_not_numbers_are_refused_with_a_reason() {
        let b = Builtin::new(BuiltinKind::Sum, Some(Pointer::parse("/bytes").unwrap()), ResultFormat::Json);
        assert_eq!(b.value_of(b"{\"x\":1}").unwrap_err(), "aggregate field /bytes is missing");
        assert_eq!(
            b.value_of(b"{\"bytes\":\"9\"}").unwrap_err(),
            "aggregate field /bytes is a string, expected a number"
        );
        assert!(b.value_of(b"nope").unwrap_err().starts_with("cannot aggregate /bytes: invalid JSON"));
        let mut acc = StateValue::new();
        b.add(&mut acc, false, Some(Num::Int(512)));
        let mut out = Vec::new();
        b.format(b"10.0.0.1", Some(TimeWindow { start: 0, end: 60_000 }), &acc, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"key":"10.0.0.1","window_start":0,"window_end":60000,"sum":512}"#
        );
    }
}
