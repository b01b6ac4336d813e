"""The loops behind the WIT exports: bytes in, bytes and rejections out.

Pure Python (no WIT types): ``_wit.exports`` wraps these for componentize-py,
and tests call them directly. Rejections are ``(index, reason)`` pairs.
"""

import inspect as _inspect
import struct as _struct

from ._errors import Failed, Reject, reason_of
from ._layout import (
    CLEAR_STATE,
    KEEP_STATE,
    SET_STATE,
    BatchWriter,
    LayoutError,
    ResultWriter,
    batch_count,
    read_add_groups,
    read_batch,
    read_finish_groups,
    read_process_groups,
    read_timer_groups,
    write_accumulators,
)
from ._params import Params
from ._record import Out, Record, Window, resolve_out, value_bytes
from ._shapes import Aggregate, Context, Emitter, Filter, FlatMap, Map, Process

_hdr = _struct.Struct("<qIII").pack
_hdr_from = _struct.Struct("<qIII").unpack_from
_new = tuple.__new__
_u32_into = _struct.Struct("<I").pack_into
I64_MIN = -(1 << 63)
SHAPES = {"map": Map, "filter": Filter, "flat_map": FlatMap, "aggregate": Aggregate, "process": Process}


def shape_of(cls):
    """The shape name of a function class ("map", ..., "process")."""
    for name, base in SHAPES.items():
        if isinstance(cls, type) and issubclass(cls, base):
            return name
    raise TypeError(
        f"{cls!r} is not a Weir function: subclass weir.Map, weir.Filter, weir.FlatMap, weir.Aggregate or "
        "weir.Process (or decorate a function with @weir.map, @weir.filter or @weir.flat_map)"
    )


def _positional(f):
    """How many positional arguments ``f`` takes (``None``: any number)."""
    try:
        ps = _inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return None
    n = 0
    for p in ps:
        if p.kind == p.VAR_POSITIONAL:
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            n += 1
    return n


def init(cls, pairs):
    """Builds the function object from the params pairs (errors propagate:
    weir errors keep their kind, anything else means invalid params)."""
    shape = shape_of(cls)
    fn = cls(Params(pairs))
    if shape == "flat_map":
        # flat_map(record) returns/yields outputs; flat_map(record, out) emits.
        _EMITS[cls] = _positional(fn.flat_map) != 1
    elif shape in ("aggregate", "process"):
        c = getattr(fn, "codec", None)
        if not (hasattr(c, "encode") and hasattr(c, "decode")):
            raise Failed(f"{cls.__name__}.codec must be a weir.Codec (with encode and decode), not {c!r}")
    return fn


_EMITS = {}


def _batch(data, start=0, end=None):
    try:
        return read_batch(data, start, end)
    except LayoutError as e:
        raise _bad_batch(e) from None


def _groups(read, data):
    try:
        return read(data)
    except LayoutError as e:
        raise _bad_batch(e) from None


def _push(buf, ts, key, value, headers):
    if key is None:
        buf += _hdr(ts, 0xFFFFFFFF, len(value), len(headers))
    else:
        buf += _hdr(ts, len(key), len(value), len(headers))
        buf += key
    buf += value
    if headers:
        buf += headers


def _bad_batch(e):
    return Reject(f"the host sent a malformed batch: {e}")


def run_map(fn, data):
    # Reads the batch and writes the output in the same pass (a malformed
    # batch is reported after the loop: the outputs are then discarded).
    try:
        count = batch_count(data)
    except LayoutError as e:
        raise _bad_batch(e) from None
    f = fn.map
    hdr_from = _hdr_from
    hdr = _hdr
    new = _new
    buf = bytearray(4)
    rejected = []
    pos = 4
    try:
        for i in range(count):
            ts, kl, vl, hl = hdr_from(data, pos)
            pos += 20
            if kl == 0xFFFFFFFF:
                key = None
            else:
                key = data[pos : pos + kl]
                pos += kl
            value = data[pos : pos + vl]
            pos += vl
            if hl:
                h = data[pos : pos + hl]
                pos += hl
            else:
                h = b""
            mark = len(buf)
            try:
                v = f(new(Record, (ts, key, value, h)))
                t = type(v)
                if t is str:
                    v = v.encode()
                elif t is not bytes:
                    if t is Out:
                        _push(buf, *resolve_out(v, ts, key, h))
                        continue
                    v = value_bytes(v)
                buf += hdr(ts, kl, len(v), hl)
                if key:
                    buf += key
                buf += v
                if hl:
                    buf += h
            except BaseException as e:
                del buf[mark:]
                rejected.append((i, reason_of(e)))
    except _struct.error:
        pos = len(data) + 1
    if pos != len(data):
        raise _bad_batch("a record runs past the end" if pos > len(data) else "bytes left over after the records")
    _u32_into(buf, 0, count - len(rejected))
    return bytes(buf), rejected


def run_filter(fn, data):
    try:
        count = batch_count(data)
    except LayoutError as e:
        raise _bad_batch(e) from None
    f = fn.filter
    hdr_from = _hdr_from
    new = _new
    keep = bytearray((count + 7) >> 3)
    rejected = []
    pos = 4
    try:
        for i in range(count):
            ts, kl, vl, hl = hdr_from(data, pos)
            pos += 20
            if kl == 0xFFFFFFFF:
                key = None
            else:
                key = data[pos : pos + kl]
                pos += kl
            value = data[pos : pos + vl]
            pos += vl
            if hl:
                h = data[pos : pos + hl]
                pos += hl
            else:
                h = b""
            try:
                if f(new(Record, (ts, key, value, h))):
                    keep[i >> 3] |= 1 << (i & 7)
            except BaseException as e:
                rejected.append((i, reason_of(e)))
    except _struct.error:
        pos = len(data) + 1
    if pos != len(data):
        raise _bad_batch("a record runs past the end" if pos > len(data) else "bytes left over after the records")
    return bytes(keep), rejected


_SINGLE = (bytes, str, Out, dict, bytearray, memoryview)


def _emit_all(em, result):
    if type(result) in _SINGLE:
        em.emit(result)
    else:
        for item in result:
            em.emit(item)


def run_flat_map(fn, data):
    records = _batch(data)
    f = fn.flat_map
    emits = _EMITS.get(type(fn))
    if emits is None:
        emits = _EMITS[type(fn)] = _positional(f) != 1
    w = BatchWriter()
    em = Emitter(w)
    rejected = []
    for i, r in enumerate(records):
        mark = w.mark()
        em._ts = r[0]
        em._key = r[1]
        em._headers = r[3]
        try:
            res = f(r, em) if emits else f(r)
            if res is not None:
                _emit_all(em, res)
        except BaseException as e:
            w.rollback(mark)
            rejected.append((i, reason_of(e)))
    return w.finish(), rejected


def _decode_stored(codec, data):
    try:
        return codec.decode(data)
    except Exception as e:
        raise Failed(f"cannot decode the stored state: {reason_of(e)}") from None


def _encode(codec, value, what):
    try:
        return codec.encode(value)
    except Exception as e:
        raise Failed(f"cannot encode the {what} with {type(codec).__name__}: {reason_of(e)}") from None


def agg_create(fn):
    return _encode(fn.codec, fn.create(), "accumulator")


def agg_add(fn, data):
    groups = _groups(read_add_groups, data)
    codec = fn.codec
    add = fn.add
    accs = []
    rejected = []
    index = 0
    for _key, _start, _end, acc_bytes, records in groups:
        acc = _decode_stored(codec, acc_bytes)
        for r in records:
            try:
                res = add(acc, r)
                if res is not None:
                    acc = res
            except BaseException as e:
                rejected.append((index, reason_of(e)))
            index += 1
        accs.append(_encode(codec, acc, "accumulator"))
    return write_accumulators(accs), rejected


def agg_merge(fn, a, b):
    codec = fn.codec
    return _encode(codec, fn.merge(_decode_stored(codec, a), _decode_stored(codec, b)), "accumulator")


def agg_finish(fn, data):
    groups = _groups(read_finish_groups, data)
    codec = fn.codec
    finish = fn.finish
    buf = bytearray(4)
    n = 0
    for key, start, end, acc_bytes in groups:
        res = finish(key, Window(start, end), _decode_stored(codec, acc_bytes))
        if res is None:
            continue
        ts = end - 1 if end != I64_MIN else end
        if type(res) is Out:
            _push(buf, *resolve_out(res, ts, key, b""))
        else:
            _push(buf, ts, key, value_bytes(res), b"")
        n += 1
    _u32_into(buf, 0, n)
    return bytes(buf)


def _result(results, codec, ctx, output):
    change = ctx._change
    if change == 0:
        results.add(KEEP_STATE, None, output)
    elif change == 1 and ctx._state is not None:
        results.add(SET_STATE, _encode(codec, ctx._state, "state"), output)
    else:
        results.add(CLEAR_STATE, None, output)


def run_process(fn, data):
    groups = _groups(read_process_groups, data)
    codec = fn.codec
    proc = fn.process
    results = ResultWriter()
    rejected = []
    index = 0
    w = BatchWriter()
    em = Emitter(w)
    for key, value, records in groups:
        ctx = Context(key, None if value is None else _decode_stored(codec, value))
        w.reset()
        for r in records:
            mark = w.mark()
            em._ts = r[0]
            em._key = r[1]
            em._headers = r[3]
            try:
                res = proc(ctx, r, em)
                if res is not None:
                    _emit_all(em, res)
            except BaseException as e:
                w.rollback(mark)
                rejected.append((index, reason_of(e)))
            index += 1
        _result(results, codec, ctx, w.finish())
    return results.finish(), rejected


def run_on_timer(fn, data):
    groups = _groups(read_timer_groups, data)
    codec = fn.codec
    on_timer = fn.on_timer
    results = ResultWriter()
    w = BatchWriter()
    em = Emitter(w)
    for key, value, timers in groups:
        ctx = Context(key, None if value is None else _decode_stored(codec, value))
        w.reset()
        em._key = key
        em._headers = b""
        for at in timers:
            em._ts = at
            res = on_timer(ctx, at, em)
            if res is not None:
                _emit_all(em, res)
        _result(results, codec, ctx, w.finish())
    return results.finish()
