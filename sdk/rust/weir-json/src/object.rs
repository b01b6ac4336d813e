//! Flat access to the top-level fields of a JSON object.

use crate::scanner::{scan_object, JsonError, Members};
use crate::value::{unescape, Kind, Value};
use std::borrow::Cow;
use std::fmt;

/// A validated JSON object and its top-level fields (spans, no copies).
///
/// Made for the common record shape, a flat object read field by field:
///
/// ```
/// let bid = weir_json::Object::parse(br#"{"auction":7,"channel":"Direct"}"#).unwrap();
/// assert_eq!(bid.u64("auction").unwrap(), 7);
/// assert_eq!(bid.str("channel").unwrap(), "Direct");
/// assert!(bid.u64("price").is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Object<'a> {
    members: Members<'a>,
}

/// A field that is missing or of another type than asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    field: String,
    problem: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}` {}", self.field, self.problem)
    }
}

impl std::error::Error for FieldError {}

impl<'a> Object<'a> {
    /// Validates `doc` (exactly one JSON object) and indexes its fields.
    pub fn parse(doc: &'a [u8]) -> Result<Self, JsonError> {
        let mut members = Members::default();
        scan_object(doc, &mut members)?;
        Ok(Object { members })
    }

    /// The value of field `name` (the first, if it repeats).
    pub fn get(&self, name: &str) -> Option<Value<'a>> {
        self.members
            .iter()
            .find(|(k, escaped, _)| if *escaped { unescape(k) == name } else { *k == name.as_bytes() })
            .map(|(_, _, v)| *v)
    }

    /// Field names and values, in document order.
    pub fn iter(&self) -> impl Iterator<Item = (Cow<'a, str>, Value<'a>)> + '_ {
        self.members.iter().map(|(k, escaped, v)| {
            let name =
                if *escaped { Cow::Owned(unescape(k)) } else { Cow::Borrowed(std::str::from_utf8(k).unwrap_or("")) };
            (name, *v)
        })
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the object has no fields.
    pub fn is_empty(&self) -> bool {
        self.members.len() == 0
    }

    fn typed<T>(&self, name: &str, expected: &str, f: impl FnOnce(&Value<'a>) -> Option<T>) -> Result<T, FieldError> {
        let v = self.get(name).ok_or_else(|| FieldError { field: name.into(), problem: "is missing".into() })?;
        f(&v).ok_or_else(|| FieldError {
            field: name.into(),
            problem: match v.kind() {
                Kind::Number => format!("is {}, expected {expected}", String::from_utf8_lossy(v.raw())),
                Kind::Null => format!("is null, expected {expected}"),
                k => format!(
                    "is {} {}, expected {expected}",
                    if k == Kind::Array || k == Kind::Object { "an" } else { "a" },
                    k.name()
                ),
            },
        })
    }

    /// Field `name` as a string (unescaped).
    pub fn str(&self, name: &str) -> Result<Cow<'a, str>, FieldError> {
        self.typed(name, "a string", Value::as_str)
    }

    /// Field `name` as an unsigned integer.
    pub fn u64(&self, name: &str) -> Result<u64, FieldError> {
        self.typed(name, "an unsigned integer", Value::as_u64)
    }

    /// Field `name` as a signed integer.
    pub fn i64(&self, name: &str) -> Result<i64, FieldError> {
        self.typed(name, "an integer", Value::as_i64)
    }

    /// Field `name` as a number.
    pub fn f64(&self, name: &str) -> Result<f64, FieldError> {
        self.typed(name, "a number", Value::as_f64)
    }

    /// Field `name` as a boolean.
    pub fn bool(&self, name: &str) -> Result<bool, FieldError> {
        self.typed(name, "a boolean", Value::as_bool)
    }
}
