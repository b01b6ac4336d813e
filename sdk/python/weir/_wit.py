"""``weir.exports``: the classes componentize-py looks for in the app module.

Inside componentize-py the WIT bindings (``wit_world``) exist; on plain
CPython local stand-ins are used, so an app module imports and its export
classes can be called in tests with batch bytes.
"""

from collections import namedtuple as _namedtuple

from . import _glue, _host
from ._errors import Error, Failed, reason_of

# The export class names per shape, as componentize-py names the interfaces.
EXPORTS = {
    "map": "Mapper",
    "filter": "Filter",
    "flat_map": "FlatMapper",
    "aggregate": "Aggregator",
    "process": "Processor",
}
WORLDS = {
    "map": "map-function",
    "filter": "filter-function",
    "flat_map": "flat-map-function",
    "aggregate": "aggregate-function",
    "process": "process-function",
}


class LocalErr(Exception):
    """Stands in for componentize-py's ``Err`` outside a component."""

    def __init__(self, value):
        super().__init__(value)
        self.value = value


_UdfError = _namedtuple("UdfError", "value")


class _Local:
    """Stand-ins for the generated types (plain CPython)."""

    Err = LocalErr
    InvalidParams = type("UdfError_InvalidParams", (_UdfError,), {"__slots__": ()})
    InvalidInput = type("UdfError_InvalidInput", (_UdfError,), {"__slots__": ()})
    Failed = type("UdfError_Failed", (_UdfError,), {"__slots__": ()})
    Rejection = _namedtuple("Rejection", "index reason")
    Mapped = _namedtuple("Mapped", "output rejected")
    Filtered = _namedtuple("Filtered", "keep rejected")
    Added = _namedtuple("Added", "accumulators rejected")
    Processed = _namedtuple("Processed", "results rejected")
    bases = {}


def _bindings(shape):
    try:
        from componentize_py_types import Err
        from wit_world import exports as wexports
        from wit_world.imports import types
    except ImportError:
        return _Local
    b = type("_Wit", (), {})
    b.Err = Err
    b.InvalidParams = types.UdfError_InvalidParams
    b.InvalidInput = types.UdfError_InvalidInput
    b.Failed = types.UdfError_Failed
    b.Rejection = types.Rejection
    b.Mapped = types.Mapped
    name = EXPORTS[shape]
    if not hasattr(wexports, name):
        raise TypeError(
            f"this component's world does not export {name}: a weir.{_glue.SHAPES[shape].__name__} function "
            f"needs the world {WORLDS[shape]} (put `# weir-world: {WORLDS[shape]}` in the app)"
        )
    b.bases = {"Lifecycle": wexports.Lifecycle, name: getattr(wexports, name)}
    if shape == "filter":
        from wit_world.exports.filter import Filtered

        b.Filtered = Filtered
    elif shape == "aggregate":
        from wit_world.exports.aggregator import Added

        b.Added = Added
    elif shape == "process":
        from wit_world.exports.processor import Processed

        b.Processed = Processed
    return b


def exports(function):
    """The export classes of a component implementing ``function`` (a
    subclass of weir.Map, Filter, FlatMap, Aggregate or Process), to bind
    in the app module under these exact names::

        Lifecycle, Mapper = weir.exports(MyMap)          # map-function
        Lifecycle, Filter = weir.exports(MyFilter)       # filter-function
        Lifecycle, FlatMapper = weir.exports(MyFlatMap)  # flat-map-function
        Lifecycle, Aggregator = weir.exports(MyAgg)      # aggregate-function
        Lifecycle, Processor = weir.exports(MyProcess)   # process-function
    """
    shape = _glue.shape_of(function)
    w = _bindings(shape)
    _host.services()  # import the host bindings now (at build time, into the snapshot)
    Err = w.Err
    kinds = {"invalid-params": w.InvalidParams, "invalid-input": w.InvalidInput, "failed": w.Failed}
    slot = [None]

    def current():
        fn = slot[0]
        if fn is None:
            raise Failed("called before init (the host must call lifecycle.init first)")
        return fn

    def call_error(e):
        # The error value of a call that fails as a whole. Unexpected
        # exceptions are logged with their traceback.
        if isinstance(e, Error):
            return Err(kinds[e.kind](e.message))
        try:
            import traceback

            _host.log("error", "".join(traceback.format_exception(type(e), e, e.__traceback__)).rstrip())
        except BaseException:
            pass
        return Err(w.Failed(reason_of(e)))

    def rejections(pairs):
        return [w.Rejection(i, r) for i, r in pairs]

    def base(name):
        return (w.bases[name],) if name in w.bases else ()

    class Lifecycle(*base("Lifecycle")):
        def init(self, params):
            slot[0] = None
            try:
                slot[0] = _glue.init(function, params)
            except BaseException as e:
                kind = "failed" if isinstance(e, Failed) else "invalid-params"
                raise Err(kinds[kind](reason_of(e))) from None

    if shape == "map":

        class Mapper(*base("Mapper")):
            def map(self, input):
                try:
                    out, rej = _glue.run_map(current(), input)
                    return w.Mapped(out, rejections(rej))
                except BaseException as e:
                    raise call_error(e) from None

        return Lifecycle, Mapper

    if shape == "filter":

        class Filter(*base("Filter")):
            def filter(self, input):
                try:
                    keep, rej = _glue.run_filter(current(), input)
                    return w.Filtered(keep, rejections(rej))
                except BaseException as e:
                    raise call_error(e) from None

        return Lifecycle, Filter

    if shape == "flat_map":

        class FlatMapper(*base("FlatMapper")):
            def flat_map(self, input):
                try:
                    out, rej = _glue.run_flat_map(current(), input)
                    return w.Mapped(out, rejections(rej))
                except BaseException as e:
                    raise call_error(e) from None

        return Lifecycle, FlatMapper

    if shape == "aggregate":

        class Aggregator(*base("Aggregator")):
            def create(self):
                try:
                    return _glue.agg_create(current())
                except BaseException as e:
                    raise call_error(e) from None

            def add(self, groups):
                try:
                    accs, rej = _glue.agg_add(current(), groups)
                    return w.Added(accs, rejections(rej))
                except BaseException as e:
                    raise call_error(e) from None

            def merge(self, a, b):
                try:
                    return _glue.agg_merge(current(), a, b)
                except BaseException as e:
                    raise call_error(e) from None

            def finish(self, fired):
                try:
                    return _glue.agg_finish(current(), fired)
                except BaseException as e:
                    raise call_error(e) from None

        return Lifecycle, Aggregator

    class Processor(*base("Processor")):
        def process(self, groups):
            try:
                results, rej = _glue.run_process(current(), groups)
                return w.Processed(results, rejections(rej))
            except BaseException as e:
                raise call_error(e) from None

        def on_timer(self, fired):
            try:
                return _glue.run_on_timer(current(), fired)
            except BaseException as e:
                raise call_error(e) from None

    return Lifecycle, Processor
