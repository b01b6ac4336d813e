"""The step's ``params``, as given to ``init``."""

import json as _json
import re as _re

from ._errors import InvalidParams

_INT = _re.compile(r"[+-]?[0-9]+\Z")
_FLOAT = _re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)\Z", _re.I)
_NO_DEFAULT = object()


def _bad(name, v, why):
    return InvalidParams(f"parameter `{name}` = {_json.dumps(v, ensure_ascii=False)}: {why}")


class Params:
    """Name/value parameters from the pipeline manifest (all values are
    strings), in manifest order.

    Typed getters return ``default`` when the parameter is absent and raise
    :class:`weir.InvalidParams` naming the parameter when it does not parse;
    call :meth:`allow_only` first so that a misspelt name fails at start.
    """

    __slots__ = ("_pairs",)

    def __init__(self, pairs=()):
        if isinstance(pairs, dict):
            pairs = pairs.items()
        self._pairs = [(str(n), str(v)) for n, v in pairs]

    def get(self, name, default=None):
        """The value of ``name`` (the first if repeated), or ``default``."""
        for n, v in self._pairs:
            if n == name:
                return v
        return default

    def require(self, name):
        """The value of ``name``, or an ``invalid-params`` error saying it is missing."""
        for n, v in self._pairs:
            if n == name:
                return v
        raise InvalidParams(f"missing parameter `{name}`")

    def _raw(self, name, default):
        v = self.get(name, _NO_DEFAULT)
        if v is _NO_DEFAULT:
            if default is _NO_DEFAULT:
                raise InvalidParams(f"missing parameter `{name}`")
            return _NO_DEFAULT
        return v

    def int(self, name, default=_NO_DEFAULT, *, min=None, max=None):
        """``name`` as an integer (decimal digits, optional sign), within
        ``[min, max]`` when given. No default: the parameter is required."""
        v = self._raw(name, default)
        if v is _NO_DEFAULT:
            return default
        if not _INT.match(v):
            raise _bad(name, v, "invalid digit found in string" if v else "cannot parse integer from empty string")
        n = int(v)
        if min is not None and n < min:
            raise _bad(name, v, f"must be at least {min}")
        if max is not None and n > max:
            raise _bad(name, v, f"must be at most {max}")
        return n

    def float(self, name, default=_NO_DEFAULT):
        """``name`` as a float (``1``, ``-2.5``, ``1e3``, ``inf``, ``nan``).
        No default: the parameter is required."""
        v = self._raw(name, default)
        if v is _NO_DEFAULT:
            return default
        if not _FLOAT.match(v):
            raise _bad(name, v, "invalid float literal")
        return float(v)

    def bool(self, name, default=_NO_DEFAULT):
        """``name`` as ``true`` or ``false``. No default: the parameter is required."""
        v = self._raw(name, default)
        if v is _NO_DEFAULT:
            return default
        if v == "true":
            return True
        if v == "false":
            return False
        raise _bad(name, v, "expected true or false")

    def str(self, name, default=_NO_DEFAULT):
        """``name`` as a string. No default: the parameter is required."""
        v = self._raw(name, default)
        return default if v is _NO_DEFAULT else v

    def choice(self, name, choices, default=_NO_DEFAULT):
        """``name``, which must be one of ``choices``."""
        v = self._raw(name, default)
        if v is _NO_DEFAULT:
            return default
        if v not in choices:
            raise InvalidParams(f"`{name}` is {_json.dumps(v, ensure_ascii=False)}; expected " + " or ".join(choices))
        return v

    def allow_only(self, known):
        """Refuses (``invalid-params``) any parameter whose name is not in ``known``."""
        known = list(known)
        for n, _ in self._pairs:
            if n not in known:
                if not known:
                    raise InvalidParams(f"unknown parameter `{n}`: this function takes no parameters")
                raise InvalidParams(f"unknown parameter `{n}` (known: {', '.join(known)})")

    def items(self):
        """All ``(name, value)`` pairs, in manifest order."""
        return list(self._pairs)

    def __iter__(self):
        return iter(self._pairs)

    def __len__(self):
        return len(self._pairs)

    def __contains__(self, name):
        return any(n == name for n, _ in self._pairs)

    def __repr__(self):
        return f"weir.Params({self._pairs!r})"
