"""Weir guest SDK for Python: write the functions of a Weir pipeline in Python
and build them as WebAssembly components with componentize-py.

A component module (``app.py``) names its world in a comment and binds the
export classes componentize-py looks for::

    # weir-world: map-function
    import weir

    class Shout(weir.Map):
        def map(self, record):
            return record.text().upper()

    Lifecycle, Mapper = weir.exports(Shout)

Shapes: :class:`Map`, :class:`Filter`, :class:`FlatMap`, :class:`Aggregate`,
:class:`Process` (or the decorators :func:`map`, :func:`filter`,
:func:`flat_map` on plain functions). Records arrive in batches (one call per
batch, layout in the repository's ``wit/batch.md``); the SDK reads them and
writes the outputs in one buffer. See ``sdk/python/README.md``.
"""

from ._codec import JSON, PICKLE, RAW, Codec, JsonCodec, PickleCodec, RawCodec, StructCodec
from ._errors import Error, Failed, InvalidInput, InvalidParams, Reject
from ._host import current_watermark, debug, error, info, log, trace, warn
from ._json import I64_MAX, I64_MIN, U64_MAX, Object, dumps, loads
from ._params import Params
from ._record import KEEP, Out, Record, Window
from ._shapes import Aggregate, Context, Emitter, Filter, FlatMap, Function, Map, Process, filter, flat_map, map
from ._wit import exports

__version__ = "0.1.0"

__all__ = [
    "Aggregate", "Codec", "Context", "Emitter", "Error", "Failed", "Filter", "FlatMap", "Function",
    "I64_MAX", "I64_MIN", "InvalidInput", "InvalidParams", "JSON", "JsonCodec", "KEEP", "Map", "Object",
    "Out", "PICKLE", "Params", "PickleCodec", "Process", "RAW", "RawCodec", "Record", "Reject",
    "StructCodec", "U64_MAX", "Window", "current_watermark", "debug", "dumps", "error", "exports",
    "filter", "flat_map", "info", "loads", "log", "map", "trace", "warn",
]
