"""Reading JSON record values: strict parsing and typed top-level fields."""

import json as _json

from ._errors import Reject

U64_MAX = (1 << 64) - 1
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1


def _no_constant(name):
    # NaN, Infinity and -Infinity are not JSON (RFC 8259).
    raise ValueError(f"{name} is not valid JSON")


_decoder = _json.JSONDecoder(parse_constant=_no_constant)
_decode = _decoder.decode
_scan = _decoder.scan_once  # the C scanner: skips decode()'s two whitespace regex matches
_WS = " \t\n\r"


def loads(data):
    """Parses UTF-8 JSON bytes (or str) strictly; raises :class:`weir.Reject`
    with a readable reason when they are not valid JSON."""
    try:
        if type(data) is not str:
            data = data.decode() if type(data) is bytes else bytes(data).decode()
        try:
            value, end = _scan(data, 0)
        except StopIteration:
            return _decode(data)  # leading whitespace, or no value: the full path (and its error)
        if end != len(data) and data[end:].strip(_WS):
            return _decode(data)  # raises "Extra data"
        return value
    except UnicodeDecodeError as e:
        raise Reject(f"value is not UTF-8: {e}") from None
    except _json.JSONDecodeError as e:
        raise Reject(f"invalid JSON at position {e.pos}: {e.msg}") from None
    except ValueError as e:
        raise Reject(f"invalid JSON: {e}") from None


def dumps(value):
    """Compact JSON text (no spaces, non-ASCII kept as is)."""
    return _json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_MISSING = object()


def _describe(v):
    t = type(v)
    if v is None:
        return "is null"
    if t is bool:
        return "is a boolean"
    if t is int or t is float:
        return f"is {v!r}"
    if t is str:
        return "is a string"
    if t is list:
        return "is an array"
    if t is dict:
        return "is an object"
    return f"is a {t.__name__}"


def _wrong(name, v, expected):
    if v is _MISSING:
        return Reject(f"field `{name}` is missing")
    return Reject(f"field `{name}` {_describe(v)}, expected {expected}")


def as_object(value):
    """``value`` (a parsed JSON value) as an :class:`Object`, or Reject."""
    if type(value) is not dict:
        raise Reject(f"value is not a JSON object ({_describe(value)[3:]})")
    o = _new_object(Object)
    o.dict = value
    return o


class Object:
    """A JSON object with typed access to its top-level fields.

    ``Object.parse(record.value)`` (or ``record.object()``) validates the
    value; ``.u64("auction")``, ``.i64(..)``, ``.f64(..)``, ``.str(..)``,
    ``.bool(..)`` return the field or raise :class:`weir.Reject` saying
    what is wrong ("field `price` is a string, expected an unsigned
    integer"). ``obj["name"]``, ``obj.get("name")``, ``"name" in obj`` and
    ``obj.dict`` give the plain values.
    """

    __slots__ = ("dict",)

    def __init__(self, d):
        self.dict = d

    @staticmethod
    def parse(data):
        """Parses JSON bytes that must hold an object."""
        return as_object(loads(data))

    def __getitem__(self, name):
        return self.dict[name]

    def __contains__(self, name):
        return name in self.dict

    def __len__(self):
        return len(self.dict)

    def __iter__(self):
        return iter(self.dict)

    def __repr__(self):
        return f"weir.Object({self.dict!r})"

    def get(self, name, default=None):
        """The field's value (any JSON type), or ``default``."""
        return self.dict.get(name, default)

    def u64(self, name):
        """An integer field from 0 to 2**64-1 (no fraction, no exponent)."""
        v = self.dict.get(name, _MISSING)
        if type(v) is int and 0 <= v <= U64_MAX:
            return v
        raise _wrong(name, v, "an unsigned integer")

    def i64(self, name):
        """An integer field that fits in 64 signed bits."""
        v = self.dict.get(name, _MISSING)
        if type(v) is int and I64_MIN <= v <= I64_MAX:
            return v
        raise _wrong(name, v, "an integer")

    def f64(self, name):
        """A number field as a float (integers converted to the nearest float)."""
        v = self.dict.get(name, _MISSING)
        t = type(v)
        if t is float:
            return v
        if t is int:
            try:
                return float(v)
            except OverflowError:
                return float("inf") if v > 0 else float("-inf")
        raise _wrong(name, v, "a number")

    def str(self, name):
        """A string field."""
        v = self.dict.get(name, _MISSING)
        if type(v) is str:
            return v
        raise _wrong(name, v, "a string")

    def bool(self, name):
        """A boolean field."""
        v = self.dict.get(name, _MISSING)
        if type(v) is bool:
            return v
        raise _wrong(name, v, "a boolean")


_new_object = object.__new__
