//! One strict pass over a JSON document: validation plus pointer lookup.

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

/// Checks that `doc` is exactly one JSON value (whitespace around it allowed).
pub fn validate(doc: &[u8]) -> Result<(), JsonError> {
    scan(doc, &[], &mut [])
}

/// Validates `doc` and stores in `found[i]` the value at `pointers[i]`
/// (`None` where there is none).
///
/// # Panics
/// If `found` is shorter than `pointers` or there are more than
/// [`MAX_POINTERS`] pointers.
pub fn scan<'a>(
    doc: &'a [u8],
    pointers: &[Pointer],
    found: &mut [Option<Value<'a>>],
) -> Result<(), JsonError> {
    assert!(found.len() >= pointers.len(), "one slot per pointer");
    assert!(
        pointers.len() <= MAX_POINTERS,
        "at most {MAX_POINTERS} pointers per scan"
    );
    for f in found.iter_mut() {
        *f = None;
    }
    if let Err(e) = std::str::from_utf8(doc) {
        return Err(JsonError {
            offset: e.valid_up_to(),
            what: "invalid UTF-8",
        });
    }
    let active = match pointers.len() {
        0 => 0,
        64 => u64::MAX,
        n => (1u64 << n) - 1,
    };
    let mut s = Scanner {
        b: doc,
        pos: 0,
        pointers,
        found,
        members: None,
    };
    s.ws();
    s.value(0, active)?;
    s.ws();
    if s.pos != doc.len() {
        return Err(s.err("unexpected characters after the JSON value"));
    }
    Ok(())
}

/// A top-level member of an object: its key (inside the quotes, as written),
/// whether the key has escapes, and its value.
pub(crate) type Member<'a> = (&'a [u8], bool, Value<'a>);

/// Validates `doc` as a JSON object and collects its top-level members.
pub(crate) fn scan_object<'a>(
    doc: &'a [u8],
    members: &mut Vec<Member<'a>>,
) -> Result<(), JsonError> {
    members.clear();
    if let Err(e) = std::str::from_utf8(doc) {
        return Err(JsonError {
            offset: e.valid_up_to(),
            what: "invalid UTF-8",
        });
    }
    let mut s = Scanner {
        b: doc,
        pos: 0,
        pointers: &[],
        found: &mut [],
        members: Some(members),
    };
    s.ws();
    if s.peek() != Some(b'{') {
        return Err(s.err("expected a JSON object"));
    }
    s.object(0, 0)?;
    s.ws();
    if s.pos != doc.len() {
        return Err(s.err("unexpected characters after the JSON value"));
    }
    Ok(())
}

/// The kind of a validated value from its first byte.
fn kind_of(raw: &[u8]) -> Kind {
    match raw[0] {
        b'{' => Kind::Object,
        b'[' => Kind::Array,
        b'"' => Kind::String,
        b't' | b'f' => Kind::Bool,
        b'n' => Kind::Null,
        _ => Kind::Number,
    }
}

struct Scanner<'a, 'p> {
    b: &'a [u8],
    pos: usize,
    pointers: &'p [Pointer],
    found: &'p mut [Option<Value<'a>>],
    members: Option<&'p mut Vec<Member<'a>>>,
}

impl<'a> Scanner<'a, '_> {
    fn err(&self, what: &'static str) -> JsonError {
        JsonError {
            offset: self.pos,
            what,
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize, active: u64) -> Result<(), JsonError> {
        let start = self.pos;
        let kind = match self.peek() {
            Some(b'{') => self.object(depth, active)?,
            Some(b'[') => self.array(depth, active)?,
            Some(b'"') => {
                self.string()?;
                Kind::String
            }
            Some(b'-' | b'0'..=b'9') => {
                self.number()?;
                Kind::Number
            }
            Some(b't') => self.literal(b"true", Kind::Bool)?,
            Some(b'f') => self.literal(b"false", Kind::Bool)?,
            Some(b'n') => self.literal(b"null", Kind::Null)?,
            Some(_) => return Err(self.err("expected a value")),
            None => return Err(self.err("unexpected end of input, expected a value")),
        };
        let mut m = active;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            if self.pointers[i].tokens().len() == depth {
                self.found[i] = Some(Value {
                    raw: &self.b[start..self.pos],
                    kind,
                });
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8], kind: Kind) -> Result<Kind, JsonError> {
        if self.b[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(kind)
        } else {
            Err(self.err(
                "expected a value (true, false, null, a number, a string, an array or an object)",
            ))
        }
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

    fn object(&mut self, depth: usize, active: u64) -> Result<Kind, JsonError> {
        if depth >= MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Kind::Object);
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string (an object key)"));
            }
            let key_start = self.pos + 1;
            let escaped = self.string()?;
            let key = &self.b[key_start..self.pos - 1];
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected `:` after an object key"));
            }
            self.pos += 1;
            self.ws();
            let next = match active {
                0 => 0,
                _ if escaped => self.child(depth, active, crate::value::unescape(key).as_bytes()),
                _ => self.child(depth, active, key),
            };
            let value_start = self.pos;
            self.value(depth + 1, next)?;
            if depth == 0 {
                if let Some(members) = self.members.as_deref_mut() {
                    let raw = &self.b[value_start..self.pos];
                    members.push((
                        key,
                        escaped,
                        Value {
                            raw,
                            kind: kind_of(raw),
                        },
                    ));
                }
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Kind::Object);
                }
                _ => return Err(self.err("expected `,` or `}` in an object")),
            }
        }
    }

    fn array(&mut self, depth: usize, active: u64) -> Result<Kind, JsonError> {
        if depth >= MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Kind::Array);
        }
        let mut index = 0usize;
        loop {
            self.ws();
            let next = if active == 0 {
                0
            } else {
                self.child(depth, active, index.to_string().as_bytes())
            };
            self.value(depth + 1, next)?;
            index += 1;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Kind::Array);
                }
                _ => return Err(self.err("expected `,` or `]` in an array")),
            }
        }
    }

    /// A string starting at its opening quote; returns whether it has escapes.
    fn string(&mut self) -> Result<bool, JsonError> {
        self.pos += 1;
        let b = self.b;
        let mut escaped = false;
        loop {
            while let Some(&c) = b.get(self.pos) {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            match b.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    match b.get(self.pos + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 2
                        }
                        Some(b'u') => {
                            let hex = b.get(self.pos + 2..self.pos + 6);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(self.err("`\\u` must be followed by four hex digits"));
                            }
                            self.pos += 6;
                        }
                        _ => return Err(self.err("invalid escape in string")),
                    }
                }
                Some(_) => return Err(self.err("control character in string (must be escaped)")),
                None => return Err(self.err("unterminated string")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<(), JsonError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.err("leading zeros are not allowed in numbers"));
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.err("expected a digit after the decimal point"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("expected a digit in the exponent"));
            }
        }
        Ok(())
    }
}
