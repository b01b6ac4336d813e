"""The function shapes, and what keyed and emitting callbacks receive."""

from . import _host
from ._codec import JSON
from ._record import KEEP, Out, encode_headers, key_bytes, resolve_out, value_bytes


class Function:
    """Base of every shape. ``__init__(self, params)`` receives the step's
    :class:`weir.Params`; the default accepts no parameters at all."""

    def __init__(self, params):
        params.allow_only(())


class Map(Function):
    """A one-to-one transformation (``map`` step, world ``map-function``).

    ``map(self, record)`` returns the output value (``bytes``, ``str``, a
    dict/list written as JSON) or a :class:`weir.Out`. Raising refuses the
    record (dead letter with the exception's message)."""

    _weir_shape = "map"

    def map(self, record):
        raise NotImplementedError("implement map(self, record)")


class Filter(Function):
    """A predicate (``filter`` step, world ``filter-function``): ``filter(self,
    record)`` returns a truth value; raising refuses the record."""

    _weir_shape = "filter"

    def filter(self, record):
        raise NotImplementedError("implement filter(self, record)")


class FlatMap(Function):
    """A one-to-many transformation (``flat_map`` step, world ``flat-map-function``).

    Either ``flat_map(self, record, out)`` calling ``out.emit(...)``, or
    ``flat_map(self, record)`` returning/yielding outputs (values or
    :class:`weir.Out`). Raising refuses the record and drops what it emitted."""

    _weir_shape = "flat_map"

    def flat_map(self, record, out):
        raise NotImplementedError("implement flat_map(self, record, out)")


class Aggregate(Function):
    """A window aggregate (``window`` step with ``aggregate: { udf: .. }``,
    world ``aggregate-function``). Accumulators are stored by the host,
    encoded with ``codec`` (default :data:`weir.JSON`).

    * ``create(self)``: the empty accumulator
    * ``add(self, acc, record)``: returns the new accumulator (returning
      ``None`` keeps ``acc``, for accumulators changed in place). Raising
      refuses the record; check before changing ``acc`` in place.
    * ``merge(self, a, b)``: one accumulator of two (session windows)
    * ``finish(self, key, window, acc)``: the output value or
      :class:`weir.Out` (key: the group's, timestamp ``window.end - 1``,
      no headers), or ``None`` for no output
    """

    _weir_shape = "aggregate"
    codec = JSON

    def create(self):
        raise NotImplementedError("implement create(self)")

    def add(self, acc, record):
        raise NotImplementedError("implement add(self, acc, record)")

    def merge(self, a, b):
        raise NotImplementedError("implement merge(self, a, b) (needed for session windows)")

    def finish(self, key, window, acc):
        raise NotImplementedError("implement finish(self, key, window, acc)")


class Process(Function):
    """A keyed processor with state and timers (``process`` step, world
    ``process-function``). The key's state is encoded with ``codec``
    (default :data:`weir.JSON`).

    * ``process(self, ctx, record, out)``: a record of ``ctx.key``, in order.
      Raising refuses the record and drops what it emitted (state changes
      already made stay).
    * ``on_timer(self, ctx, at, out)``: a timer of ``ctx.key`` fired.
      Outputs start from the key and the timer's time. Raising fails the call.
    """

    _weir_shape = "process"
    codec = JSON

    def process(self, ctx, record, out):
        raise NotImplementedError("implement process(self, ctx, record, out)")

    def on_timer(self, ctx, at, out):
        return None


def _decorator(base, method):
    def wrap(fn):
        cls = type(fn.__name__, (base,), {method: staticmethod(fn), "__doc__": fn.__doc__, "__module__": fn.__module__})
        return cls

    wrap.__name__ = method
    wrap.__doc__ = f"Makes a {base.__name__} function (taking no parameters) of a plain function."
    return wrap


#: ``@weir.map`` on ``def f(record)``: a :class:`Map` without parameters.
map = _decorator(Map, "map")
#: ``@weir.filter`` on ``def f(record)``: a :class:`Filter` without parameters.
filter = _decorator(Filter, "filter")
#: ``@weir.flat_map`` on ``def f(record[, out])``: a :class:`FlatMap` without parameters.
flat_map = _decorator(FlatMap, "flat_map")


class Emitter:
    """Emits output records (flat-map, process, on_timer). Each starts from the
    defaults (the input record's key, timestamp and headers; the key and the
    timer's time in ``on_timer``)."""

    __slots__ = ("_w", "_ts", "_key", "_headers")

    def __init__(self, writer, ts=0, key=None, raw_headers=b""):
        self._w = writer
        self._ts = ts
        self._key = key
        self._headers = raw_headers

    def emit(self, value, *, key=KEEP, timestamp=None, headers=None):
        """Emits a record. ``value``: bytes, str, dict/list (JSON) or a
        :class:`weir.Out`; ``key``: bytes or str, ``None`` for none, omitted
        for the default; ``timestamp``: ms; ``headers``: ``(name, value)``
        pairs replacing the default headers."""
        if type(value) is Out:
            ts, k, v, h = resolve_out(value, self._ts, self._key, self._headers)
            self._w.push(ts, k, v, h)
            return
        if type(value) is not bytes:
            value = value_bytes(value)
        if key is KEEP:
            key = self._key
        elif type(key) is not bytes:
            key = key_bytes(key)
        self._w.push(self._ts if timestamp is None else timestamp, key, value,
                     self._headers if headers is None else encode_headers(headers))

    @property
    def timestamp(self):
        """The timestamp emitted records get by default."""
        return self._ts

    @property
    def key(self):
        """The key emitted records get by default."""
        return self._key


_KEPT, _SET, _CLEARED = 0, 1, 2
_MUTABLE = (dict, list, bytearray, set)


class Context:
    """What a process callback sees of its key.

    * ``ctx.key``: the key (``bytes``)
    * ``ctx.state``: the key's state (decoded with the function's ``codec``),
      ``None`` if it has none. Assign to replace it (``None`` clears it). A
      dict, list, set or bytearray state that was read is saved at the end
      of the call (it may have changed in place); for other mutable objects
      changed in place call :meth:`mark_changed`.
      Travels once per key per call: keep what every record touches here.
    * timers: :meth:`register_timer`, :meth:`delete_timer`
    * named state, one host call each (for what is large or rarely needed):
      :meth:`value`, :meth:`set_value`, :meth:`clear`, :meth:`map_get`,
      :meth:`map_put`, :meth:`map_remove`, :meth:`map_entries`,
      :meth:`list`, :meth:`list_append`.

    Writes through timers and named state take effect only if the whole call
    succeeds.
    """

    __slots__ = ("key", "_state", "_change")

    def __init__(self, key, state=None):
        self.key = key
        self._state = state
        self._change = _KEPT

    @property
    def state(self):
        s = self._state
        if type(s) in _MUTABLE and self._change == _KEPT:
            self._change = _SET  # may be changed in place: saved at the end of the call
        return s

    @state.setter
    def state(self, value):
        self._state = value
        self._change = _CLEARED if value is None else _SET

    def clear_state(self):
        """Removes the key's state."""
        self._state = None
        self._change = _CLEARED

    def mark_changed(self):
        """Saves the state at the end of the call (after an in-place change)."""
        self._change = _SET if self._state is not None else _CLEARED

    def register_timer(self, at):
        """Calls ``on_timer`` for this key once the watermark reaches ``at`` (ms)."""
        _host.services().timer_register(self.key, at)

    def delete_timer(self, at):
        """Cancels this key's timer at ``at``, if any."""
        _host.services().timer_delete(self.key, at)

    @property
    def watermark(self):
        """The current event-time watermark."""
        return _host.services().current_watermark()

    def value(self, name):
        """The named value ``name`` of this key (``bytes``), or ``None``."""
        return _host.services().value_get(self.key, name)

    def set_value(self, name, value):
        """Sets the named value ``name`` (``bytes`` or ``str``)."""
        _host.services().value_set(self.key, name, _b(value))

    def clear(self, name):
        """Removes the named state ``name`` (value, map or list) of this key."""
        _host.services().clear(self.key, name)

    def map_get(self, name, field):
        """An entry of the map ``name``, or ``None``."""
        return _host.services().map_get(self.key, name, _b(field))

    def map_put(self, name, field, value):
        """Sets an entry of the map ``name``."""
        _host.services().map_put(self.key, name, _b(field), _b(value))

    def map_remove(self, name, field):
        """Removes an entry of the map ``name``."""
        _host.services().map_remove(self.key, name, _b(field))

    def map_entries(self, name):
        """Every ``(field, value)`` of the map ``name``, ordered by field."""
        return [(bytes(f), bytes(v)) for f, v in _host.services().map_entries(self.key, name)]

    def list(self, name):
        """The items of the list ``name``, oldest first."""
        return [bytes(i) for i in _host.services().list_get(self.key, name)]

    def list_append(self, name, item):
        """Appends to the list ``name``."""
        _host.services().list_append(self.key, name, _b(item))

    def __repr__(self):
        return f"weir.Context(key={self.key!r}, state={self._state!r})"


def _b(v):
    if type(v) is bytes:
        return v
    return v.encode() if isinstance(v, str) else bytes(v)



