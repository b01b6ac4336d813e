"""Calling a function class on plain CPython, without a component or host.

Each helper builds the function from ``params`` exactly as the component
would (``init`` errors raise), sends the records through the same code as
the WIT exports, and decodes the result::

    from weir.testing import call_map
    outs, rejected = call_map(Currency, [b'{"auction":1,...}'], params={"rate": "1.1"})
    assert outs[0].value == b"..." and rejected == []

Records may be given as :class:`weir.Record` (``Record.make(value, key=,
timestamp=, headers=)``), ``bytes``, ``str`` or a dict/list (JSON). Outputs
are :class:`weir.Record` lists; rejections ``(index, reason)`` pairs.
"""

from . import _glue, _host, _layout
from ._json import dumps
from ._record import Record


def _record(r, timestamp=0, key=None):
    if isinstance(r, Record):
        return r
    if isinstance(r, (dict, list)):
        r = dumps(r)
    return Record.make(r, key=key, timestamp=timestamp)


def _batch(records, key=None):
    return _layout.write_batch([_record(r, i, key) for i, r in enumerate(records)])


def _init(cls, params):
    return _glue.init(cls, list(dict(params).items()) if isinstance(params, dict) else list(params))


def call_map(cls, records, params=()):
    """``(outputs, rejections)`` of one map call."""
    out, rej = _glue.run_map(_init(cls, params), _batch(records))
    return _layout.read_batch(out), rej


def call_filter(cls, records, params=()):
    """``(passed: list of bool, rejections)`` of one filter call."""
    records = list(records)
    keep, rej = _glue.run_filter(_init(cls, params), _batch(records))
    return _layout.bitmap_bits(keep, len(records)), rej


def call_flat_map(cls, records, params=()):
    """``(outputs, rejections)`` of one flat-map call."""
    out, rej = _glue.run_flat_map(_init(cls, params), _batch(records))
    return _layout.read_batch(out), rej


def call_aggregate(cls, groups, params=()):
    """Runs create, add (one call for all groups) and finish.

    ``groups``: ``[(key, (start, end), records), ...]``. Returns ``(outputs,
    rejections, accumulators)`` (accumulators decoded, one per group)."""
    fn = _init(cls, params)
    zero = _glue.agg_create(fn)
    add = []
    for key, (start, end), records in groups:
        key = key.encode() if isinstance(key, str) else key
        add.append((key, start, end, zero, _batch(records, key)))
    accs_bytes, rej = _glue.agg_add(fn, _layout.write_add_groups(add))
    accs = _layout.read_accumulators(accs_bytes)
    fired = [(k, s, e, a) for (k, s, e, _, _), a in zip(add, accs)]
    out = _layout.read_batch(_glue.agg_finish(fn, _layout.write_finish_groups(fired)))
    return out, rej, [fn.codec.decode(a) for a in accs]


class FakeHost(_host.Services):
    """Host services kept in dicts: ``timers`` (a set of ``(key, at)``),
    ``values``, ``maps``, ``lists`` (by ``(key, name)``), ``logs``
    (``(level, message)``), ``watermark``."""

    def __init__(self, watermark=_host.I64_MIN):
        self.timers, self.values, self.maps, self.lists, self.logs = set(), {}, {}, {}, []
        self.watermark = watermark

    def log(self, level, message):
        self.logs.append((level, message))

    def current_watermark(self):
        return self.watermark

    def timer_register(self, key, at):
        self.timers.add((bytes(key), at))

    def timer_delete(self, key, at):
        self.timers.discard((bytes(key), at))

    def value_get(self, key, name):
        return self.values.get((key, name))

    def value_set(self, key, name, value):
        self.values[(key, name)] = bytes(value)

    def clear(self, key, name):
        for d in (self.values, self.maps, self.lists):
            d.pop((key, name), None)

    def map_get(self, key, name, field):
        return self.maps.get((key, name), {}).get(field)

    def map_put(self, key, name, field, value):
        self.maps.setdefault((key, name), {})[bytes(field)] = bytes(value)

    def map_remove(self, key, name, field):
        self.maps.get((key, name), {}).pop(field, None)

    def map_entries(self, key, name):
        return sorted(self.maps.get((key, name), {}).items())

    def list_get(self, key, name):
        return list(self.lists.get((key, name), []))

    def list_append(self, key, name, item):
        self.lists.setdefault((key, name), []).append(bytes(item))


class Keyed:
    """A process function with per-key state kept between calls (like the
    host does), for :meth:`process` and :meth:`fire` calls in a row."""

    def __init__(self, cls, params=(), host=None):
        self.fn = _init(cls, params)
        self.host = host or FakeHost()
        self.state = {}  # key -> encoded state

    def _apply(self, keys, results):
        outs = []
        for key, (op, value, out) in zip(keys, _layout.read_results(results)):
            if op == _layout.SET_STATE:
                self.state[key] = value
            elif op == _layout.CLEAR_STATE:
                self.state.pop(key, None)
            outs.extend(out)
        return outs

    def _with_host(self, f, *args):
        saved = _host._services
        _host.install(self.host)
        try:
            return f(*args)
        finally:
            _host.install(saved)

    def process(self, records_by_key):
        """One process call: ``{key: [records]}``. Returns ``(outputs, rejections)``."""
        groups = []
        for key, records in records_by_key.items():
            key = key.encode() if isinstance(key, str) else key
            groups.append((key, self.state.get(key), _batch(records, key)))
        results, rej = self._with_host(_glue.run_process, self.fn, _layout.write_process_groups(groups))
        return self._apply([g[0] for g in groups], results), rej

    def fire(self, watermark):
        """Fires the registered timers at or below ``watermark`` (one on-timer
        call, keys in order). Returns the outputs."""
        self.host.watermark = watermark
        due = sorted(t for t in self.host.timers if t[1] <= watermark)
        if not due:
            return []
        self.host.timers -= set(due)
        by_key = {}
        for key, at in due:
            by_key.setdefault(key, []).append(at)
        groups = [(k, self.state.get(k), ats) for k, ats in by_key.items()]
        results = self._with_host(_glue.run_on_timer, self.fn, _layout.write_timer_groups(groups))
        return self._apply([g[0] for g in groups], results)

    def decoded_state(self, key):
        """The key's state, decoded (``None`` if it has none)."""
        key = key.encode() if isinstance(key, str) else key
        v = self.state.get(key)
        return None if v is None else self.fn.codec.decode(v)


__all__ = ["FakeHost", "Keyed", "call_aggregate", "call_filter", "call_flat_map", "call_map"]
