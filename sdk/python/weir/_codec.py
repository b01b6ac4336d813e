"""How accumulators and per-key state become bytes (the host stores bytes)."""

import json as _json
import pickle as _pickle
import struct as _struct


class Codec:
    """Turns a Python value into bytes and back. Subclass it (``encode`` /
    ``decode``) for your own format; ``decode(encode(v))`` must give ``v``
    back (an equal value)."""

    def encode(self, value):
        raise NotImplementedError

    def decode(self, data):
        raise NotImplementedError


class JsonCodec(Codec):
    """JSON (the default): dicts, lists, str, int, float (exact: floats are
    written in their shortest round-trip form; NaN and infinities too),
    bool, None. Tuples come back as lists."""

    def __init__(self):
        self._enc = _json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
        self._dec = _json.JSONDecoder().decode

    def encode(self, value):
        return self._enc(value).encode()

    def decode(self, data):
        return self._dec(data.decode())


class StructCodec(Codec):
    """Fixed-size binary with a :mod:`struct` format, e.g. ``"<dQ"`` for a
    ``(float, int)`` pair: the fastest for tuples of numbers. A format with
    one field encodes and decodes a plain value, any other a tuple."""

    def __init__(self, fmt):
        self.struct = _struct.Struct(fmt)
        self._single = len(self.struct.unpack(bytes(self.struct.size))) == 1

    def encode(self, value):
        if self._single:
            return self.struct.pack(value)
        return self.struct.pack(*value)

    def decode(self, data):
        v = self.struct.unpack(data)
        return v[0] if self._single else v


class RawCodec(Codec):
    """The value is ``bytes`` already (``bytearray``/``str`` are converted)."""

    def encode(self, value):
        if type(value) is bytes:
            return value
        return value.encode() if isinstance(value, str) else bytes(value)

    def decode(self, data):
        return bytes(data)


class PickleCodec(Codec):
    """:mod:`pickle` (any picklable Python value). Only this function reads
    it back, but a change of your classes can make old state unreadable."""

    def encode(self, value):
        return _pickle.dumps(value, protocol=5)

    def decode(self, data):
        return _pickle.loads(data)


JSON = JsonCodec()
RAW = RawCodec()
PICKLE = PickleCodec()
