"""The Weir buffer layouts (wit/batch.md, layout 1), in pure Python.

Readers take ``bytes`` and check every length against the end of the
buffer; writers build one growing ``bytearray``. Nothing here imports the
WIT bindings, so this module (and the unit tests) run on plain CPython.
"""

import struct as _struct

from ._record import Record

NONE_LEN = 0xFFFFFFFF  # key_len of a record without key; opt-bytes "absent"
KEEP_STATE, SET_STATE, CLEAR_STATE = 0, 1, 2

_HDR = _struct.Struct("<qIII")  # timestamp, key_len, value_len, headers_len
_hdr_from = _HDR.unpack_from
_hdr = _HDR.pack
_U32 = _struct.Struct("<I")
_u32_from = _U32.unpack_from
_u32 = _U32.pack
_u32_into = _U32.pack_into
_I64 = _struct.Struct("<q")
_i64_from = _I64.unpack_from
_i64 = _I64.pack
_WIN = _struct.Struct("<qq")
_win_from = _WIN.unpack_from
_new = tuple.__new__


class LayoutError(ValueError):
    """A buffer that does not follow the layout."""


def batch_count(buf, start=0, end=None):
    """The record count of the batch ``buf[start:end]``, checked against its size."""
    if end is None:
        end = len(buf)
    if end - start < 4:
        raise LayoutError(f"batch of {end - start} bytes has no record count")
    (count,) = _u32_from(buf, start)
    if count * 20 > end - start - 4:
        raise LayoutError(f"batch announces {count} records but has only {end - start - 4} bytes")
    return count


def read_batch(buf, start=0, end=None):
    """The records of the batch ``buf[start:end]``, as a list of :class:`weir.Record`
    (keys, values and headers are ``bytes`` slices)."""
    if end is None:
        end = len(buf)
    count = batch_count(buf, start, end)
    pos = start + 4
    records = [None] * count
    hdr_from = _hdr_from
    new = _new
    try:
        for i in range(count):
            ts, kl, vl, hl = hdr_from(buf, pos)
            pos += 20
            if kl == 0xFFFFFFFF:
                key = None
            else:
                key = buf[pos : pos + kl]
                pos += kl
            value = buf[pos : pos + vl]
            pos += vl
            if hl:
                records[i] = new(Record, (ts, key, value, buf[pos : pos + hl]))
                pos += hl
            else:
                records[i] = new(Record, (ts, key, value, b""))
    except _struct.error:
        pos = end + 1
    # Slices never fail: a length that runs past the end shows here.
    if pos != end:
        if pos > end:
            raise LayoutError(f"a record runs past the end of the batch ({end - start} bytes)")
        raise LayoutError(f"batch has {end - pos} bytes left over after {count} records")
    return records


class BatchWriter:
    """Builds a batch in one ``bytearray``: ``push`` records, then ``finish``."""

    __slots__ = ("buf", "count")

    def __init__(self):
        self.buf = bytearray(4)
        self.count = 0

    def push(self, timestamp, key, value, raw_headers=b""):
        """Appends a record (``key`` ``None``: no key; ``raw_headers`` in batch layout)."""
        buf = self.buf
        if key is None:
            buf += _hdr(timestamp, 0xFFFFFFFF, len(value), len(raw_headers))
        else:
            buf += _hdr(timestamp, len(key), len(value), len(raw_headers))
            buf += key
        buf += value
        if raw_headers:
            buf += raw_headers
        self.count += 1

    def mark(self):
        """A point to :meth:`rollback` to."""
        return len(self.buf), self.count

    def rollback(self, mark):
        """Drops what was pushed since ``mark``."""
        del self.buf[mark[0] :]
        self.count = mark[1]

    def finish(self):
        """The batch bytes (the writer can be reused after :meth:`reset`)."""
        _u32_into(self.buf, 0, self.count)
        return bytes(self.buf)

    def reset(self):
        del self.buf[4:]
        self.count = 0


def write_batch(records):
    """A batch of ``(timestamp, key, value[, raw_headers])`` tuples or Records."""
    w = BatchWriter()
    for r in records:
        if isinstance(r, Record):
            w.push(r.timestamp, r.key, r.value, r.raw_headers)
        else:
            w.push(*r)
    return w.finish()


# -- group lists (§3) --------------------------------------------------------


class _Cursor:
    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf):
        self.buf = buf
        self.pos = 0
        self.end = len(buf)

    def _need(self, n, what):
        if self.end - self.pos < n:
            raise LayoutError(f"{what} runs past the end of the buffer (at byte {self.pos})")

    def u8(self, what="u8"):
        self._need(1, what)
        v = self.buf[self.pos]
        self.pos += 1
        return v

    def u32(self, what="u32"):
        self._need(4, what)
        (v,) = _u32_from(self.buf, self.pos)
        self.pos += 4
        return v

    def i64(self, what="i64"):
        self._need(8, what)
        (v,) = _i64_from(self.buf, self.pos)
        self.pos += 8
        return v

    def span(self, what):
        """(start, end) of a ``bytes`` field."""
        n = self.u32(what)
        self._need(n, what)
        s = self.pos
        self.pos += n
        return s, self.pos

    def bytes(self, what):
        s, e = self.span(what)
        return self.buf[s:e]

    def opt_bytes(self, what):
        n = self.u32(what)
        if n == NONE_LEN:
            return None
        self._need(n, what)
        s = self.pos
        self.pos += n
        return self.buf[s : self.pos]

    def done(self):
        if self.pos != self.end:
            raise LayoutError(f"{self.end - self.pos} bytes left over after the list")


def read_add_groups(buf):
    """``add`` groups: list of ``(key, start, end, acc, records)``."""
    c = _Cursor(buf)
    groups = []
    for _ in range(c.u32("group count")):
        key = c.bytes("key")
        start = c.i64("window start")
        end = c.i64("window end")
        acc = c.bytes("accumulator")
        s, e = c.span("records")
        groups.append((key, start, end, acc, read_batch(buf, s, e)))
    c.done()
    return groups


def read_finish_groups(buf):
    """``finish`` groups: list of ``(key, start, end, acc)``."""
    c = _Cursor(buf)
    groups = []
    for _ in range(c.u32("group count")):
        key = c.bytes("key")
        start = c.i64("window start")
        end = c.i64("window end")
        groups.append((key, start, end, c.bytes("accumulator")))
    c.done()
    return groups


def read_process_groups(buf):
    """``process`` groups: list of ``(key, value or None, records)``."""
    c = _Cursor(buf)
    groups = []
    for _ in range(c.u32("group count")):
        key = c.bytes("key")
        value = c.opt_bytes("value")
        s, e = c.span("records")
        groups.append((key, value, read_batch(buf, s, e)))
    c.done()
    return groups


def read_timer_groups(buf):
    """``on-timer`` groups: list of ``(key, value or None, [at, ...])``."""
    c = _Cursor(buf)
    groups = []
    for _ in range(c.u32("group count")):
        key = c.bytes("key")
        value = c.opt_bytes("value")
        n = c.u32("timer count")
        c._need(8 * n, "timers")
        timers = list(_struct.unpack_from(f"<{n}q", buf, c.pos))
        c.pos += 8 * n
        groups.append((key, value, timers))
    c.done()
    return groups


def _bytes_field(out, b):
    out += _u32(len(b))
    out += b


def _opt_bytes_field(out, b):
    if b is None:
        out += _u32(NONE_LEN)
    else:
        _bytes_field(out, b)


def write_add_groups(groups):
    """The inverse of :func:`read_add_groups` (records: a batch's bytes)."""
    out = bytearray(_u32(len(groups)))
    for key, start, end, acc, records in groups:
        _bytes_field(out, key)
        out += _WIN.pack(start, end)
        _bytes_field(out, acc)
        _bytes_field(out, records)
    return bytes(out)


def write_finish_groups(groups):
    """The inverse of :func:`read_finish_groups`."""
    out = bytearray(_u32(len(groups)))
    for key, start, end, acc in groups:
        _bytes_field(out, key)
        out += _WIN.pack(start, end)
        _bytes_field(out, acc)
    return bytes(out)


def write_process_groups(groups):
    """The inverse of :func:`read_process_groups` (records: a batch's bytes)."""
    out = bytearray(_u32(len(groups)))
    for key, value, records in groups:
        _bytes_field(out, key)
        _opt_bytes_field(out, value)
        _bytes_field(out, records)
    return bytes(out)


def write_timer_groups(groups):
    """The inverse of :func:`read_timer_groups`."""
    out = bytearray(_u32(len(groups)))
    for key, value, timers in groups:
        _bytes_field(out, key)
        _opt_bytes_field(out, value)
        out += _u32(len(timers))
        out += _struct.pack(f"<{len(timers)}q", *timers)
    return bytes(out)


# -- accumulator list (§4) and result list (§5) ---------------------------------


def write_accumulators(accs):
    """An accumulator list of ``bytes``."""
    out = bytearray(_u32(len(accs)))
    for a in accs:
        _bytes_field(out, a)
    return bytes(out)


def read_accumulators(buf):
    c = _Cursor(buf)
    accs = [c.bytes("accumulator") for _ in range(c.u32("count"))]
    c.done()
    return accs


class ResultWriter:
    """Builds a result list: one :meth:`add` per input group, in order."""

    __slots__ = ("buf", "count")

    def __init__(self):
        self.buf = bytearray(4)
        self.count = 0

    def add(self, op, value, output):
        """``op``: KEEP_STATE, SET_STATE (with ``value`` bytes) or CLEAR_STATE;
        ``output``: a batch's bytes."""
        buf = self.buf
        buf.append(op)
        if op == SET_STATE:
            _bytes_field(buf, value)
        _bytes_field(buf, output)
        self.count += 1

    def finish(self):
        _u32_into(self.buf, 0, self.count)
        return bytes(self.buf)


def read_results(buf):
    """A result list: list of ``(op, value or None, records)``."""
    c = _Cursor(buf)
    results = []
    for _ in range(c.u32("count")):
        op = c.u8("state op")
        value = None
        if op == SET_STATE:
            value = c.bytes("value")
        elif op not in (KEEP_STATE, CLEAR_STATE):
            raise LayoutError(f"state op {op}: expected 0, 1 or 2")
        s, e = c.span("output")
        results.append((op, value, read_batch(buf, s, e)))
    c.done()
    return results


# -- filter bitmap (§6) --------------------------------------------------------


def new_bitmap(n):
    """``ceil(n / 8)`` zero bytes."""
    return bytearray((n + 7) >> 3)


def set_bit(bitmap, i):
    bitmap[i >> 3] |= 1 << (i & 7)


def get_bit(bitmap, i):
    return bool(bitmap[i >> 3] >> (i & 7) & 1)


def bitmap_bits(bitmap, n):
    """The first ``n`` bits as a list of bools."""
    return [bool(bitmap[i >> 3] >> (i & 7) & 1) for i in range(n)]
