"""Input records, output overrides and windows."""

import struct as _struct
from collections import namedtuple as _namedtuple

from ._errors import Reject
from ._json import as_object, dumps, loads

_u32_from = _struct.Struct("<I").unpack_from
_u32 = _struct.Struct("<I").pack


def encode_headers(pairs):
    """The raw bytes of headers given as ``(name, value)`` pairs (str or bytes each)."""
    out = bytearray()
    for name, value in pairs:
        if type(name) is not bytes:
            name = name.encode() if isinstance(name, str) else bytes(name)
        if type(value) is not bytes:
            value = value.encode() if isinstance(value, str) else bytes(value)
        out += _u32(len(name))
        out += name
        out += _u32(len(value))
        out += value
    return bytes(out)


def decode_headers(buf, start, end):
    """``(name, value)`` byte pairs of the raw headers ``buf[start:end]``."""
    pairs = []
    pos = start
    try:
        while pos < end:
            (n,) = _u32_from(buf, pos)
            pos += 4
            name = buf[pos : pos + n]
            pos += n
            (m,) = _u32_from(buf, pos)
            pos += 4
            value = buf[pos : pos + m]
            pos += m
            pairs.append((bytes(name), bytes(value)))
    except _struct.error:
        pos = end + 1
    if pos != end:
        raise Reject("the record's headers are malformed")
    return pairs


try:
    from _collections import _tuplegetter
except ImportError:  # pragma: no cover
    from operator import itemgetter as _itemgetter

    def _tuplegetter(i, doc):
        return property(_itemgetter(i), doc=doc)


class Record(tuple):
    """One input record (read-only).

    * ``record.value``: the value, ``bytes``
    * ``record.key``: the key, ``bytes``, or ``None`` when the record has none
    * ``record.timestamp``: event time (or ingestion time), ms since the Unix epoch
    * ``record.text()``: the value as ``str`` (UTF-8), or a rejection
    * ``record.json()``: the value parsed as JSON (strict), or a rejection
    * ``record.object()``: the value as a :class:`weir.Object` (typed fields)
    * ``record.headers``: ``[(name: str, value: bytes), ...]``;
      ``record.header(name)``: the first value of that header, or ``None``
    """

    __slots__ = ()

    # A tuple (timestamp, key, value, raw headers), built by the batch reader
    # without a Python-level __init__.
    timestamp = _tuplegetter(0, "Event time (or ingestion time), ms since the Unix epoch.")
    key = _tuplegetter(1, "The key (bytes), or None when the record has none.")
    value = _tuplegetter(2, "The value (bytes).")
    raw_headers = _tuplegetter(3, "The headers as they are in the batch (bytes, layout of wit/batch.md).")

    def text(self):
        """The value decoded as UTF-8; rejects the record if it is not."""
        try:
            return self[2].decode()
        except UnicodeDecodeError as e:
            raise Reject(f"value is not UTF-8: {e}") from None

    def json(self):
        """The value parsed as JSON; rejects the record if it is not valid JSON."""
        return loads(self[2])

    def object(self):
        """The value as a JSON object with typed field getters (:class:`weir.Object`)."""
        return as_object(loads(self[2]))

    @property
    def headers(self):
        """The headers as ``(name, value)`` pairs: name ``str``, value ``bytes``."""
        h = self[3]
        if not h:
            return []
        return [(n.decode("utf-8", "replace"), v) for n, v in decode_headers(h, 0, len(h))]

    def header(self, name):
        """The value (``bytes``) of the first header called ``name``, or ``None``."""
        h = self[3]
        if not h:
            return None
        if type(name) is not bytes:
            name = name.encode()
        for n, v in decode_headers(h, 0, len(h)):
            if n == name:
                return v
        return None

    def __repr__(self):
        return f"weir.Record(timestamp={self[0]}, key={self[1]!r}, value={self[2]!r}, headers={self.headers!r})"

    @staticmethod
    def make(value, key=None, timestamp=0, headers=()):
        """A stand-alone record (for tests)."""
        if isinstance(value, str):
            value = value.encode()
        if isinstance(key, str):
            key = key.encode()
        raw = encode_headers(headers)
        return tuple.__new__(Record, (timestamp, key, bytes(value), raw))


class _Keep:
    __slots__ = ()

    def __repr__(self):
        return "weir.KEEP"

    def __reduce__(self):
        return "KEEP"


#: The default of ``key=`` in :class:`Out` and ``emit``: the key the output
#: starts from (the input record's, the group's or the timer's).
KEEP = _Keep()


class Out:
    """An output record: a value plus what differs from the defaults.

    Defaults: the input record's key, timestamp and headers (map, flat-map,
    process), the group's key and ``window.end - 1`` (aggregate finish), the
    key and the timer's time (on_timer).

    ``key``: ``bytes`` or ``str``, ``None`` for no key, omitted to keep the
    default. ``timestamp``: ms, ``None`` to keep. ``headers``: ``(name,
    value)`` pairs replacing the default ones (``[]`` drops them), ``None``
    to keep; :meth:`add_header` appends after the kept ones.
    """

    __slots__ = ("value", "key", "timestamp", "headers", "extra_headers")

    def __init__(self, value=b"", *, key=KEEP, timestamp=None, headers=None):
        self.value = value
        self.key = key
        self.timestamp = timestamp
        self.headers = headers
        self.extra_headers = None

    def add_header(self, name, value):
        """Adds a header after the kept (or given) ones; returns ``self``."""
        if self.extra_headers is None:
            self.extra_headers = []
        self.extra_headers.append((name, value))
        return self

    def __repr__(self):
        return f"weir.Out({self.value!r}, key={self.key!r}, timestamp={self.timestamp!r}, headers={self.headers!r})"


def value_bytes(v):
    """A returned/emitted value as bytes: bytes-likes as they are, str as
    UTF-8, dict/list as compact JSON."""
    t = type(v)
    if t is bytes:
        return v
    if t is str:
        return v.encode()
    if t is bytearray or t is memoryview:
        return bytes(v)
    if t is dict or t is list:
        return dumps(v).encode()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, str):
        return v.encode()
    if v is None:
        raise TypeError("the function returned None; return the output value (bytes, str, dict/list as JSON) or weir.Out(...)")
    raise TypeError(f"cannot use a {t.__name__} as a record value (use bytes, str, a dict/list for JSON, or weir.Out)")


def key_bytes(k):
    """A key given by the user as bytes (``None`` stays ``None``)."""
    t = type(k)
    if t is bytes or k is None:
        return k
    if t is str:
        return k.encode()
    if isinstance(k, (bytes, bytearray, memoryview)):
        return bytes(k)
    if isinstance(k, str):
        return k.encode()
    raise TypeError(f"cannot use a {t.__name__} as a record key (use bytes, str or None)")


def resolve_out(o, ts, key, raw_headers):
    """(timestamp, key, value, raw headers) of an :class:`Out` over defaults."""
    value = value_bytes(o.value)
    if o.timestamp is not None:
        ts = o.timestamp
    if o.key is not KEEP:
        key = key_bytes(o.key)
    if o.headers is not None:
        raw_headers = encode_headers(o.headers)
    if o.extra_headers:
        raw_headers = raw_headers + encode_headers(o.extra_headers)
    return ts, key, value, raw_headers


class Window(_namedtuple("_WindowFields", "start end")):
    """A window ``[start, end)`` in ms. Count and global windows have
    ``start == weir.I64_MIN`` and ``end - 1`` equal to the timestamp of the
    record that made them fire."""

    __slots__ = ()

    @property
    def is_time(self):
        """Whether this is a time window (tumbling, sliding, session)."""
        return self.start != -(1 << 63)
