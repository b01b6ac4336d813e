"""Errors a function raises, and how they become dead-letter reasons."""


class Error(Exception):
    """A failure with a kind the host understands (see the subclasses).

    Raised from a per-record callback, any exception refuses that record
    only; the kind matters for the calls that fail as a whole (``init``,
    aggregate ``create``/``merge``/``finish``, ``on_timer``).
    """

    kind = "failed"

    @property
    def message(self):
        return str(self.args[0]) if self.args else type(self).__name__


class InvalidParams(Error):
    """The step's ``params`` do not suit the function (raise it from ``__init__``)."""

    kind = "invalid-params"


class Reject(Error):
    """Refuses the record being processed: it goes to the dead-letter output
    with this message as the reason, and the batch goes on."""

    kind = "invalid-input"


#: Same as :class:`Reject` (the WIT name of the kind).
InvalidInput = Reject


class Failed(Error):
    """Anything else. From ``init`` it is reported as ``failed`` rather than
    ``invalid-params``."""

    kind = "failed"


def reason_of(e):
    """The text a refused record or a failed call is reported with.

    A :class:`weir.Error` gives its message; any other exception
    ``"TypeName: message"`` (e.g. ``KeyError: 'price'``)."""
    if isinstance(e, Error):
        return e.message
    text = str(e)
    name = type(e).__name__
    return f"{name}: {text}" if text else name
