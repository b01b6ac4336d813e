//! One strict pass over a JSON document: validation plus pointer lookup.
//!
//! Speed matters here: the host validates every input line and guests parse
//! every record. The lexical pieces (whitespace, strings, numbers) are free
//! functions over `(bytes, position)` so positions stay in registers; the
//! recursive part only handles nesting and pointer bookkeeping; UTF-8 is
//! checked only inside strings that contain non-ASCII bytes (anywhere else
//! such a byte is a syntax error anyway).

use crate::pointer::Pointer;
use crate::value::{Kind, Value};
use std::fmt;

/// Deepest nesting of arrays and objects accepted (deeper input is refused
/// rather than risking the stack).
pub const MAX_DEPTH: usize = 128;

/// Most pointers one [`scan`] looks up.
pub const MAX_POINTERS: usize = 64;

/// Why bytes are not a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What is wrong there.
    pub what: &'static str,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSON at byte {}: {}", self.offset, self.what)
    }
}

impl std::error::Error for JsonError {}

type Result<T> = std::result::Result<T, JsonError>;

#[cold]
fn err<T>(offset: usize, what: &'static str) -> Result<T> {
    Err(JsonError { offset, what })
}

/// Checks that `doc` is exactly one JSON value (whitespace around it allowed).
pub fn validate(doc: &[u8]) -> Result<()> {
    scan(doc, &[], &mut [])
}

/// Validates `doc` and stores in `found[i]` the value at `pointers[i]`
/// (`None` where there is none).
///
/// # Panics
/// If `found` is shorter than `pointers` or there are more than
/// [`MAX_POINTERS`] pointers.
pub fn scan<'a>(doc: &'a [u8], pointers: &[Pointer], found: &mut [Option<Value<'a>>]) -> Result<()> {
    assert!(found.len() >= pointers.len(), "one slot per pointer");
    assert!(pointers.len() <= MAX_POINTERS, "at most {MAX_POINTERS} pointers per scan");
    for f in found.iter_mut() {
        *f = None;
    }
    let active = match pointers.len() {
        0 => 0,
        64 => u64::MAX,
        n => (1u64 << n) - 1,
    };
    let mut s = Scanner { b: doc, pointers, found, members: None, missing: pointers.len(), stop_when_found: false };
    let p = s.value(ws(doc, 0), 0, active)?;
    end(doc, p)
}

/// Finds the values at `pointers` like [`scan`], but stops reading as soon
/// as every pointer has a value: what comes after is not validated. For
/// documents validated before (a `json` source), or when the rest does not
/// matter. A pointer that is not found means the whole document was read.
pub fn extract<'a>(doc: &'a [u8], pointers: &[Pointer], found: &mut [Option<Value<'a>>]) -> Result<()> {
    assert!(found.len() >= pointers.len(), "one slot per pointer");
    assert!(pointers.len() <= MAX_POINTERS, "at most {MAX_POINTERS} pointers per scan");
    for f in found.iter_mut() {
        *f = None;
    }
    let active = match pointers.len() {
        0 => 0,
        64 => u64::MAX,
        n => (1u64 << n) - 1,
    };
    let mut s = Scanner { b: doc, pointers, found, members: None, missing: pointers.len(), stop_when_found: true };
    match s.value(ws(doc, 0), 0, active) {
        Ok(p) => end(doc, p),
        Err(e) if e.what == FOUND_ALL => Ok(()),
        Err(e) => Err(e),
    }
}

/// Internal signal: every pointer has its value, stop reading.
const FOUND_ALL: &str = "(found)";

/// A top-level member of an object: its key (inside the quotes, as written),
/// whether the key has escapes, and its value.
pub(crate) type Member<'a> = (&'a [u8], bool, Value<'a>);

/// Validates `doc` as a JSON object and collects its top-level members.
pub(crate) fn scan_object<'a>(doc: &'a [u8], members: &mut Members<'a>) -> Result<()> {
    members.clear();
    let p = ws(doc, 0);
    if doc.get(p) != Some(&b'{') {
        return err(p, "expected a JSON object");
    }
    let mut s =
        Scanner { b: doc, pointers: &[], found: &mut [], members: Some(members), missing: 0, stop_when_found: false };
    let (p, _) = s.object(p, 0, 0)?;
    end(doc, p)
}

fn end(doc: &[u8], p: usize) -> Result<()> {
    let p = ws(doc, p);
    if p != doc.len() {
        return err(p, "unexpected characters after the JSON value");
    }
    Ok(())
}

#[inline(always)]
fn ws(b: &[u8], mut p: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(p) {
        p += 1;
    }
    p
}

/// One bit (the top bit of the byte) set for each byte of `word` that is a
/// quote, a backslash, below 0x20 or above 0x7f. The lowest set bit is
/// exact; bits above it may be false positives (borrows), so callers look at
/// the lowest only.
#[inline(always)]
fn special_bytes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    zero_byte(word ^ (ONES * b'"' as u64))
        | zero_byte(word ^ (ONES * b'\\' as u64))
        | (word.wrapping_sub(ONES * 0x20) & !word & HIGH)
        | (word & HIGH)
}

/// A string whose opening quote is at `p`: the position after its closing
/// quote, and whether it has escapes. Eight bytes at a time.
#[inline]
fn string(b: &[u8], p: usize) -> Result<(usize, bool)> {
    let start = p + 1;
    let mut p = start;
    let mut escaped = false;
    let mut non_ascii = false;
    loop {
        while p + 8 <= b.len() {
            let word = u64::from_le_bytes(b[p..p + 8].try_into().expect("8 bytes"));
            let flags = special_bytes(word);
            if flags != 0 {
                p += (flags.trailing_zeros() / 8) as usize;
                break;
            }
            p += 8;
        }
        match b.get(p) {
            Some(b'"') => {
                if non_ascii {
                    if let Err(e) = std::str::from_utf8(&b[start..p]) {
                        return err(start + e.valid_up_to(), "invalid UTF-8");
                    }
                }
                return Ok((p + 1, escaped));
            }
            Some(b'\\') => {
                escaped = true;
                match b.get(p + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => p += 2,
                    Some(b'u') => {
                        if !b.get(p + 2..p + 6).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                            return err(p, "`\\u` must be followed by four hex digits");
                        }
                        p += 6;
                    }
                    _ => return err(p, "invalid escape in string"),
                }
            }
            Some(&c) if c < 0x20 => return err(p, "control character in string (must be escaped)"),
            Some(&c) => {
                non_ascii |= c >= 0x80;
                p += 1;
            }
            None => return err(p, "unterminated string"),
        }
    }
}

#[inline(always)]
fn digits(b: &[u8], mut p: usize) -> usize {
    while let Some(b'0'..=b'9') = b.get(p) {
        p += 1;
    }
    p
}

/// A number starting at `p`; the position after it.
#[inline]
fn number(b: &[u8], mut p: usize) -> Result<usize> {
    if b.get(p) == Some(&b'-') {
        p += 1;
    }
    match b.get(p) {
        Some(b'0') => {
            p += 1;
            if let Some(b'0'..=b'9') = b.get(p) {
                return err(p, "leading zeros are not allowed in numbers");
            }
        }
        Some(b'1'..=b'9') => p = digits(b, p + 1),
        _ => return err(p, "expected a digit"),
    }
    if b.get(p) == Some(&b'.') {
        let q = digits(b, p + 1);
        if q == p + 1 {
            return err(q, "expected a digit after the decimal point");
        }
        p = q;
    }
    if let Some(b'e' | b'E') = b.get(p) {
        p += 1;
        if let Some(b'+' | b'-') = b.get(p) {
            p += 1;
        }
        let q = digits(b, p);
        if q == p {
            return err(q, "expected a digit in the exponent");
        }
        p = q;
    }
    Ok(p)
}

fn literal(b: &[u8], p: usize, word: &'static [u8]) -> Result<usize> {
    if b[p..].starts_with(word) {
        Ok(p + word.len())
    } else {
        err(p, "expected a value (true, false, null, a number, a string, an array or an object)")
    }
}

/// Top-level members of an object: up to 16 without allocating.
#[derive(Debug, Clone)]
pub(crate) struct Members<'a> {
    inline: [Member<'a>; INLINE_MEMBERS],
    len: usize,
    spill: Vec<Member<'a>>,
}

const INLINE_MEMBERS: usize = 16;
const NO_MEMBER: Member<'static> = (&[], false, Value { raw: &[], kind: Kind::Null });

impl Default for Members<'_> {
    fn default() -> Self {
        Members { inline: [NO_MEMBER; INLINE_MEMBERS], len: 0, spill: Vec::new() }
    }
}

impl<'a> Members<'a> {
    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.spill.clear();
    }

    fn push(&mut self, m: Member<'a>) {
        if self.len < INLINE_MEMBERS {
            self.inline[self.len] = m;
            self.len += 1;
        } else {
            self.spill.push(m);
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Member<'a>> {
        self.inline[..self.len].iter().chain(self.spill.iter())
    }

    pub(crate) fn len(&self) -> usize {
        self.len + self.spill.len()
    }
}

struct Scanner<'a, 'p> {
    b: &'a [u8],
    pointers: &'p [Pointer],
    found: &'p mut [Option<Value<'a>>],
    members: Option<&'p mut Members<'a>>,
    /// Pointers still without a value.
    missing: usize,
    /// Whether to stop (with [`FOUND_ALL`]) once `missing` reaches zero.
    stop_when_found: bool,
}

impl<'a> Scanner<'a, '_> {
    /// The value at `p` (no leading whitespace); the position after it.
    fn value(&mut self, p: usize, depth: usize, active: u64) -> Result<usize> {
        let b = self.b;
        let (q, kind) = match b.get(p) {
            Some(b'{') => self.object(p, depth, active)?,
            Some(b'[') => self.array(p, depth, active)?,
            Some(b'"') => (string(b, p)?.0, Kind::String),
            Some(b'-' | b'0'..=b'9') => (number(b, p)?, Kind::Number),
            Some(b't') => (literal(b, p, b"true")?, Kind::Bool),
            Some(b'f') => (literal(b, p, b"false")?, Kind::Bool),
            Some(b'n') => (literal(b, p, b"null")?, Kind::Null),
            Some(_) => return err(p, "expected a value"),
            None => return err(p, "unexpected end of input, expected a value"),
        };
        if active != 0 {
            self.record(active, depth, Value { raw: &b[p..q], kind })?;
        }
        Ok(q)
    }

    /// Stores `value` for the pointers of `active` that end at `depth`;
    /// signals [`FOUND_ALL`] when extraction may stop.
    fn record(&mut self, active: u64, depth: usize, value: Value<'a>) -> Result<()> {
        let mut m = active;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            // The first occurrence of a repeated key wins, as in `Object::get`.
            if self.pointers[i].tokens().len() == depth && self.found[i].is_none() {
                self.missing -= 1;
                self.found[i] = Some(value);
            }
        }
        if self.stop_when_found && self.missing == 0 {
            return err(0, FOUND_ALL);
        }
        Ok(())
    }

    /// Pointers of `active` that continue into the child named `token`.
    fn child(&self, depth: usize, active: u64, token: &[u8]) -> u64 {
        let mut next = 0;
        let mut m = active;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            let t = self.pointers[i].tokens();
            if t.len() > depth && t[depth] == token {
                next |= 1 << i;
            }
        }
        next
    }

    fn object(&mut self, p: usize, depth: usize, active: u64) -> Result<(usize, Kind)> {
        if depth >= MAX_DEPTH {
            return err(p, "nested too deeply");
        }
        let b = self.b;
        let mut p = ws(b, p + 1);
        if b.get(p) == Some(&b'}') {
            return Ok((p + 1, Kind::Object));
        }
        loop {
            if b.get(p) != Some(&b'"') {
                return err(p, "expected a string (an object key)");
            }
            let (after_key, escaped) = string(b, p)?;
            let key = &b[p + 1..after_key - 1];
            p = ws(b, after_key);
            if b.get(p) != Some(&b':') {
                return err(p, "expected `:` after an object key");
            }
            p = ws(b, p + 1);
            let next = match active {
                0 => 0,
                _ if escaped => self.child(depth, active, crate::value::unescape(key).as_bytes()),
                _ => self.child(depth, active, key),
            };
            let start = p;
            // Scalars inline; only nested values recurse.
            let (q, kind) = match b.get(p) {
                Some(b'"') => (string(b, p)?.0, Kind::String),
                Some(b'-' | b'0'..=b'9') => (number(b, p)?, Kind::Number),
                Some(b'{' | b'[') => {
                    let q = self.value(p, depth + 1, next)?;
                    (q, if b[p] == b'{' { Kind::Object } else { Kind::Array })
                }
                _ => {
                    let q = self.value(p, depth + 1, 0)?;
                    (q, if b[p] == b'n' { Kind::Null } else { Kind::Bool })
                }
            };
            let value = Value { raw: &b[start..q], kind };
            if next != 0 && !matches!(kind, Kind::Object | Kind::Array) {
                self.record(next, depth + 1, value)?;
            }
            if depth == 0 {
                if let Some(members) = self.members.as_deref_mut() {
                    members.push((key, escaped, value));
                }
            }
            p = ws(b, q);
            match b.get(p) {
                Some(b',') => p = ws(b, p + 1),
                Some(b'}') => return Ok((p + 1, Kind::Object)),
                _ => return err(p, "expected `,` or `}` in an object"),
            }
        }
    }

    fn array(&mut self, p: usize, depth: usize, active: u64) -> Result<(usize, Kind)> {
        if depth >= MAX_DEPTH {
            return err(p, "nested too deeply");
        }
        let b = self.b;
        let mut p = ws(b, p + 1);
        if b.get(p) == Some(&b']') {
            return Ok((p + 1, Kind::Array));
        }
        let mut index = 0usize;
        loop {
            let next = if active == 0 { 0 } else { self.child(depth, active, index.to_string().as_bytes()) };
            p = ws(b, self.value(p, depth + 1, next)?);
            index += 1;
            match b.get(p) {
                Some(b',') => p = ws(b, p + 1),
                Some(b']') => return Ok((p + 1, Kind::Array)),
                _ => return err(p, "expected `,` or `]` in an array"),
            }
        }
    }
}
