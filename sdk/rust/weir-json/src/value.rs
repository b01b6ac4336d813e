//! Typed spans of a JSON document.

use std::borrow::Cow;

/// The type of a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `null`
    Null,
    /// `true` or `false`
    Bool,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl Kind {
    /// The JSON name of the type.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "boolean",
            Kind::Number => "number",
            Kind::String => "string",
            Kind::Array => "array",
            Kind::Object => "object",
        }
    }
}

/// A validated JSON value: its kind and its exact bytes in the document
/// (a string's bytes include the quotes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    pub(crate) raw: &'a [u8],
    pub(crate) kind: Kind,
}

impl<'a> Value<'a> {
    /// The type of the value.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The value's bytes as they appear in the document.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// A string's content, unescaped (borrowed when it has no escapes).
    pub fn as_str(&self) -> Option<Cow<'a, str>> {
        if self.kind != Kind::String {
            return None;
        }
        let inner = &self.raw[1..self.raw.len() - 1];
        // The document was validated as UTF-8 and as JSON.
        let s = std::str::from_utf8(inner).ok()?;
        if !inner.contains(&b'\\') {
            return Some(Cow::Borrowed(s));
        }
        Some(Cow::Owned(unescape(inner)))
    }

    /// A number without fraction or exponent that fits in `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        if self.kind != Kind::Number {
            return None;
        }
        match self.raw.split_first() {
            Some((b'-', digits)) => {
                let v = parse_u64(digits)?;
                if v <= i64::MIN.unsigned_abs() {
                    Some((v as i64).wrapping_neg())
                } else {
                    None
                }
            }
            _ => i64::try_from(parse_u64(self.raw)?).ok(),
        }
    }

    /// A number without sign, fraction or exponent that fits in `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        if self.kind != Kind::Number {
            return None;
        }
        parse_u64(self.raw)
    }

    /// A number as `f64` (nearest value).
    pub fn as_f64(&self) -> Option<f64> {
        if self.kind != Kind::Number {
            return None;
        }
        std::str::from_utf8(self.raw).ok()?.parse().ok()
    }

    /// `true` or `false`.
    pub fn as_bool(&self) -> Option<bool> {
        match (self.kind, self.raw) {
            (Kind::Bool, b"true") => Some(true),
            (Kind::Bool, _) => Some(false),
            _ => None,
        }
    }

    /// The value as a record key: a string's unescaped content, anything else
    /// its JSON text (so `6413` and `"6413"` give the same key).
    pub fn key_bytes(&self) -> Cow<'a, [u8]> {
        match self.as_str() {
            Some(Cow::Borrowed(s)) => Cow::Borrowed(s.as_bytes()),
            Some(Cow::Owned(s)) => Cow::Owned(s.into_bytes()),
            None => Cow::Borrowed(self.raw),
        }
    }
}

/// Decimal digits as `u64`, `None` if any byte is not a digit or the value
/// overflows. Up to 19 digits cannot overflow, so the loop needs no checked
/// arithmetic (which costs a 128-bit multiply per digit on wasm32).
#[inline]
fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let (head, last) = if digits.len() == 20 { digits.split_at(19) } else { (digits, &[][..]) };
    let mut v: u64 = 0;
    for &d in head {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u64::from(d);
    }
    match last {
        [] => Some(v),
        [d] if d.is_ascii_digit() => v.checked_mul(10)?.checked_add(u64::from(d - b'0')),
        _ => None,
    }
}

/// Unescapes the inside of a validated JSON string. Lone surrogates become
/// U+FFFD.
pub(crate) fn unescape(inner: &[u8]) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let start = i;
        while i < inner.len() && inner[i] != b'\\' {
            i += 1;
        }
        out.push_str(std::str::from_utf8(&inner[start..i]).unwrap_or("\u{FFFD}"));
        if i >= inner.len() {
            break;
        }
        let e = inner[i + 1];
        i += 2;
        let c = match e {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            _ => {
                let hi = hex4(&inner[i..i + 4]);
                i += 4;
                if (0xD800..0xDC00).contains(&hi) && inner[i..].starts_with(b"\\u") {
                    let lo = hex4(&inner[i + 2..i + 6]);
                    if (0xDC00..0xE000).contains(&lo) {
                        i += 6;
                        let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                        out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                        continue;
                    }
                }
                char::from_u32(hi).unwrap_or('\u{FFFD}')
            }
        };
        out.push(c);
    }
    out
}

fn hex4(h: &[u8]) -> u32 {
    h.iter().fold(0, |acc, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => c - b'A' + 10,
        };
        acc * 16 + u32::from(d)
    })
}
