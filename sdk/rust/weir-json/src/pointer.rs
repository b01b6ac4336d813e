//! JSON pointers (RFC 6901).

use std::fmt;

/// A parsed JSON pointer such as `/auction` or `/user/addresses/0/city`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pointer {
    text: String,
    tokens: Vec<Vec<u8>>,
}

/// A string that is not a JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointerError {
    text: String,
    what: &'static str,
}

impl fmt::Display for PointerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a JSON pointer: {}", self.text, self.what)
    }
}

impl std::error::Error for PointerError {}

impl Pointer {
    /// Parses `text`: empty (the whole document) or `/`-separated reference
    /// tokens, with `~0` for `~` and `~1` for `/`.
    pub fn parse(text: &str) -> Result<Pointer, PointerError> {
        let err = |what| PointerError { text: text.to_string(), what };
        if text.is_empty() {
            return Ok(Pointer { text: String::new(), tokens: Vec::new() });
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(err("it must be empty or start with `/` (for example `/user/id`)"));
        };
        let mut tokens = Vec::new();
        for raw in rest.split('/') {
            let mut t = Vec::with_capacity(raw.len());
            let mut chars = raw.bytes();
            while let Some(c) = chars.next() {
                if c == b'~' {
                    match chars.next() {
                        Some(b'0') => t.push(b'~'),
                        Some(b'1') => t.push(b'/'),
                        _ => return Err(err("`~` must be followed by 0 or 1")),
                    }
                } else {
                    t.push(c);
                }
            }
            tokens.push(t);
        }
        Ok(Pointer { text: text.to_string(), tokens })
    }

    /// The reference tokens, unescaped.
    pub fn tokens(&self) -> &[Vec<u8>] {
        &self.tokens
    }

    /// The pointer as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
