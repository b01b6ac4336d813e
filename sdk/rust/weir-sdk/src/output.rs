//! Output records: [`Output`] for `map`, [`Emitter`] for `flat_map`.

use weir_batch::{write_header, BatchWriter, RecordRef};

/// The output record of one input record.
///
/// It starts as a copy of the input's key, timestamp and headers with an
/// empty value; set what changes. The value is written in place (it
/// implements [`std::fmt::Write`] and [`std::io::Write`]), so `write!(out, ...)`
/// formats without allocating.
#[derive(Debug, Default)]
pub struct Output {
    value: Vec<u8>,
    key: Option<Option<Vec<u8>>>,
    timestamp: Option<i64>,
    headers: Option<Vec<u8>>,
}

impl Output {
    /// An empty output (reused across records by the SDK).
    pub fn new() -> Self {
        Output::default()
    }

    pub(crate) fn reset(&mut self) {
        self.value.clear();
        self.key = None;
        self.timestamp = None;
        self.headers = None;
    }

    /// The value written so far, to append to.
    pub fn value_mut(&mut self) -> &mut Vec<u8> {
        &mut self.value
    }

    /// Replaces the value.
    pub fn set_value(&mut self, value: impl AsRef<[u8]>) {
        self.value.clear();
        self.value.extend_from_slice(value.as_ref());
    }

    /// Sets the key (`None`: no key).
    pub fn set_key(&mut self, key: Option<&[u8]>) {
        self.key = Some(key.map(<[u8]>::to_vec));
    }

    /// Sets the timestamp, ms since the Unix epoch.
    pub fn set_timestamp(&mut self, timestamp: i64) {
        self.timestamp = Some(timestamp);
    }

    /// Drops the headers carried over from the input.
    pub fn clear_headers(&mut self) {
        self.headers = Some(Vec::new());
    }

    /// Adds a header (after those carried over from the input).
    pub fn add_header(&mut self, input: &RecordRef<'_>, name: &str, value: &[u8]) {
        let h = self.headers.get_or_insert_with(|| input.raw_headers.to_vec());
        write_header(h, name.as_bytes(), value);
    }

    /// Appends this output, completed from `input`, to `batch`.
    pub(crate) fn push_into(&self, input: &RecordRef<'_>, batch: &mut BatchWriter) {
        let key = match &self.key {
            None => input.key,
            Some(k) => k.as_deref(),
        };
        let ts = self.timestamp.unwrap_or(input.timestamp);
        let headers = self.headers.as_deref().unwrap_or(input.raw_headers);
        batch.push_with_headers(ts, key, &self.value, headers);
    }
}

impl std::fmt::Write for Output {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.value.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl std::io::Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.value.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a function-style `map` may return as the new value.
pub trait IntoValue {
    /// Writes the value into `out`.
    fn write_to(self, out: &mut Output);
}

impl IntoValue for Vec<u8> {
    fn write_to(self, out: &mut Output) {
        out.set_value(self);
    }
}

impl IntoValue for String {
    fn write_to(self, out: &mut Output) {
        out.set_value(self);
    }
}

impl IntoValue for &[u8] {
    fn write_to(self, out: &mut Output) {
        out.set_value(self);
    }
}

impl IntoValue for &str {
    fn write_to(self, out: &mut Output) {
        out.set_value(self);
    }
}

/// What emitted records get unless set otherwise: an input record's key,
/// timestamp and headers, or a key and a time (timers, windows).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Defaults<'a> {
    pub(crate) timestamp: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) headers: &'a [u8],
}

impl<'a> Defaults<'a> {
    pub(crate) fn of(r: &RecordRef<'a>) -> Self {
        Defaults { timestamp: r.timestamp, key: r.key, headers: r.raw_headers }
    }

    pub(crate) fn record(&self) -> RecordRef<'a> {
        RecordRef { timestamp: self.timestamp, key: self.key, value: &[], raw_headers: self.headers }
    }
}

/// Emits output records (`flat_map`, `process`): each starts from the input
/// record's key, timestamp and headers (a timer's key and time in `on_timer`).
pub struct Emitter<'a> {
    defaults: Defaults<'a>,
    batch: &'a mut BatchWriter,
    scratch: &'a mut Output,
    emitted: usize,
}

impl<'a> Emitter<'a> {
    pub(crate) fn new(defaults: Defaults<'a>, batch: &'a mut BatchWriter, scratch: &'a mut Output) -> Self {
        Emitter { defaults, batch, scratch, emitted: 0 }
    }

    /// Emits a record with this value (and the default key, timestamp and headers).
    pub fn emit(&mut self, value: impl AsRef<[u8]>) {
        let d = self.defaults;
        self.batch.push_with_headers(d.timestamp, d.key, value.as_ref(), d.headers);
        self.emitted += 1;
    }

    /// Emits a record with this key and value.
    pub fn emit_keyed(&mut self, key: &[u8], value: impl AsRef<[u8]>) {
        let d = self.defaults;
        self.batch.push_with_headers(d.timestamp, Some(key), value.as_ref(), d.headers);
        self.emitted += 1;
    }

    /// Emits a record built by `build` (which starts from the defaults with an empty value).
    pub fn emit_with(&mut self, build: impl FnOnce(&mut Output)) {
        self.scratch.reset();
        build(self.scratch);
        self.scratch.push_into(&self.defaults.record(), self.batch);
        self.emitted += 1;
    }

    /// The timestamp emitted records get by default.
    pub fn timestamp(&self) -> i64 {
        self.defaults.timestamp
    }

    /// Records emitted so far.
    pub fn emitted(&self) -> usize {
        self.emitted
    }
}
