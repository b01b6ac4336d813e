//! Group lists, accumulator lists and result lists (§3–§5 of `batch.md`).
//!
//! Readers validate the whole buffer when they are created and then iterate
//! without error paths; [`ListWriter`] writes any of the lists.

use crate::batch::BatchRef;
use crate::cursor::{Cursor, LayoutError, Writer};

/// One group of an `add` call: records of one key and window, with the
/// accumulator they fold into.
#[derive(Debug, Clone, Copy)]
pub struct AddGroup<'a> {
    /// The key.
    pub key: &'a [u8],
    /// Window start (inclusive), ms.
    pub start: i64,
    /// Window end (exclusive), ms.
    pub end: i64,
    /// The accumulator so far.
    pub acc: &'a [u8],
    /// The records to add.
    pub records: BatchRef<'a>,
}

/// One group of a `finish` call: a fired window's accumulator.
#[derive(Debug, Clone, Copy)]
pub struct FinishGroup<'a> {
    /// The key.
    pub key: &'a [u8],
    /// Window start (inclusive), ms.
    pub start: i64,
    /// Window end (exclusive), ms.
    pub end: i64,
    /// The final accumulator.
    pub acc: &'a [u8],
}

/// One group of a `process` call: a key's value and its records.
#[derive(Debug, Clone, Copy)]
pub struct ProcessGroup<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The key's value, if it has one.
    pub value: Option<&'a [u8]>,
    /// The key's records in this batch, in arrival order.
    pub records: BatchRef<'a>,
}

/// One group of an `on-timer` call: a key's value and its fired timers.
#[derive(Debug, Clone, Copy)]
pub struct TimerGroup<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The key's value, if it has one.
    pub value: Option<&'a [u8]>,
    timers: &'a [u8],
}

impl TimerGroup<'_> {
    /// Timestamps of the timers that fired, ascending.
    pub fn timers(&self) -> impl ExactSizeIterator<Item = i64> + '_ {
        self.timers.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
    }
}

/// What a processor did with a key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateOp<'a> {
    /// The value stays as it was.
    Keep,
    /// The value becomes these bytes.
    Set(&'a [u8]),
    /// The key has no value any more.
    Clear,
}

macro_rules! list_reader {
    ($(#[$doc:meta])* $name:ident, $item:ident, $read:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name<'a> {
            cursor: Cursor<'a>,
            left: u32,
        }

        impl<'a> $name<'a> {
            /// Validates the whole list.
            pub fn parse(buf: &'a [u8]) -> Result<Self, LayoutError> {
                let mut c = Cursor::new(buf);
                let count = c.u32()?;
                let start = c.clone();
                let read: fn(&mut Cursor<'a>) -> Result<$item<'a>, LayoutError> = $read;
                for _ in 0..count {
                    read(&mut c)?;
                }
                c.expect_end()?;
                Ok($name { cursor: start, left: count })
            }
        }

        impl<'a> Iterator for $name<'a> {
            type Item = $item<'a>;

            fn next(&mut self) -> Option<$item<'a>> {
                if self.left == 0 {
                    return None;
                }
                self.left -= 1;
                let read: fn(&mut Cursor<'a>) -> Result<$item<'a>, LayoutError> = $read;
                Some(read(&mut self.cursor).expect("validated by parse"))
            }

            fn size_hint(&self) -> (usize, Option<usize>) {
                (self.left as usize, Some(self.left as usize))
            }
        }

        impl ExactSizeIterator for $name<'_> {}
    };
}

list_reader!(
    /// Reader of an `add-groups` list.
    AddGroupIter,
    AddGroup,
    |c| {
        Ok(AddGroup {
            key: c.bytes()?,
            start: c.i64()?,
            end: c.i64()?,
            acc: c.bytes()?,
            records: BatchRef::parse(c.bytes()?)?,
        })
    }
);

list_reader!(
    /// Reader of a `finish-groups` list.
    FinishGroupIter,
    FinishGroup,
    |c| Ok(FinishGroup { key: c.bytes()?, start: c.i64()?, end: c.i64()?, acc: c.bytes()? })
);

list_reader!(
    /// Reader of a `process-groups` list.
    ProcessGroupIter,
    ProcessGroup,
    |c| Ok(ProcessGroup { key: c.bytes()?, value: c.opt_bytes()?, records: BatchRef::parse(c.bytes()?)? })
);

list_reader!(
    /// Reader of a `timer-groups` list.
    TimerGroupIter,
    TimerGroup,
    |c| {
        let key = c.bytes()?;
        let value = c.opt_bytes()?;
        let n = c.u32()? as usize;
        let timers = c.take(n.checked_mul(8).ok_or(c.error("timer count"))?, "timers")?;
        Ok(TimerGroup { key, value, timers })
    }
);

/// One accumulator of an accumulator list.
pub type Accumulator<'a> = &'a [u8];

list_reader!(
    /// Reader of an accumulator list (the result of `add`).
    AccumulatorIter,
    Accumulator,
    |c| c.bytes()
);

/// One entry of a result list: a key's value operation and its output.
#[derive(Debug, Clone, Copy)]
pub struct ProcessResult<'a> {
    /// What happens to the key's value.
    pub state: StateOp<'a>,
    /// Output records.
    pub output: BatchRef<'a>,
}

list_reader!(
    /// Reader of a result list (the result of `process` and `on-timer`).
    ResultIter,
    ProcessResult,
    |c| {
        let state = match c.u8()? {
            0 => StateOp::Keep,
            1 => StateOp::Set(c.bytes()?),
            2 => StateOp::Clear,
            _ => return Err(c.error("state op 0, 1 or 2")),
        };
        Ok(ProcessResult { state, output: BatchRef::parse(c.bytes()?)? })
    }
);

/// Writes any of the lists: a count, then entries.
#[derive(Debug, Clone)]
pub struct ListWriter {
    w: Writer,
    count: u32,
}

impl Default for ListWriter {
    fn default() -> Self {
        ListWriter::new()
    }
}

impl ListWriter {
    /// An empty list.
    pub fn new() -> Self {
        let mut w = Writer::with_capacity(256);
        w.u32(0);
        ListWriter { w, count: 0 }
    }

    fn entry(&mut self) -> &mut Writer {
        self.count += 1;
        &mut self.w
    }

    /// Appends an `add` group.
    pub fn add_group(&mut self, key: &[u8], start: i64, end: i64, acc: &[u8], records: &[u8]) {
        let w = self.entry();
        w.bytes(key);
        w.i64(start);
        w.i64(end);
        w.bytes(acc);
        w.bytes(records);
    }

    /// Appends a `finish` group.
    pub fn finish_group(&mut self, key: &[u8], start: i64, end: i64, acc: &[u8]) {
        let w = self.entry();
        w.bytes(key);
        w.i64(start);
        w.i64(end);
        w.bytes(acc);
    }

    /// Appends a `process` group.
    pub fn process_group(&mut self, key: &[u8], value: Option<&[u8]>, records: &[u8]) {
        let w = self.entry();
        w.bytes(key);
        w.opt_bytes(value);
        w.bytes(records);
    }

    /// Appends an `on-timer` group.
    pub fn timer_group(&mut self, key: &[u8], value: Option<&[u8]>, timers: &[i64]) {
        let w = self.entry();
        w.bytes(key);
        w.opt_bytes(value);
        w.u32(u32::try_from(timers.len()).expect("fewer than 4 billion timers"));
        for t in timers {
            w.i64(*t);
        }
    }

    /// Appends an accumulator.
    pub fn accumulator(&mut self, acc: &[u8]) {
        self.entry().bytes(acc);
    }

    /// Appends a result entry.
    pub fn result(&mut self, state: StateOp<'_>, output: &[u8]) {
        let w = self.entry();
        match state {
            StateOp::Keep => w.u8(0),
            StateOp::Set(v) => {
                w.u8(1);
                w.bytes(v);
            }
            StateOp::Clear => w.u8(2),
        }
        w.bytes(output);
    }

    /// Number of entries written.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no entry was written.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The finished list.
    pub fn finish(mut self) -> Vec<u8> {
        self.w.patch_u32(0, self.count);
        self.w.into_inner()
    }
}
