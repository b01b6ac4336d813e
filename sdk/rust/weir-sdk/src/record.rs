//! Input records.

use crate::error::{Error, Result};
use weir_batch::RecordRef;

/// One input record, borrowed from the batch the host sent (no copy).
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    inner: RecordRef<'a>,
}

impl<'a> Record<'a> {
    /// Wraps a record of a batch.
    pub fn new(inner: RecordRef<'a>) -> Self {
        Record { inner }
    }

    /// The value bytes.
    pub fn value(&self) -> &'a [u8] {
        self.inner.value
    }

    /// The value as UTF-8 text, or an `invalid-input` error.
    pub fn value_str(&self) -> Result<&'a str> {
        std::str::from_utf8(self.inner.value).map_err(|e| Error::invalid_input(format!("value is not UTF-8: {e}")))
    }

    /// The key, if the record has one.
    pub fn key(&self) -> Option<&'a [u8]> {
        self.inner.key
    }

    /// Event time (or ingestion time), ms since the Unix epoch.
    pub fn timestamp(&self) -> i64 {
        self.inner.timestamp
    }

    /// The headers as `(name, value)` pairs.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        self.inner.headers()
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.inner.header(name.as_bytes())
    }

    /// The underlying batch record.
    pub fn raw(&self) -> &RecordRef<'a> {
        &self.inner
    }
}
