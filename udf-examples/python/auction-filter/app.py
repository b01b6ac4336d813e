# weir-world: filter-function
"""Bench query q2's predicate: keeps the records whose integer JSON field
`field` (default `auction`) is a multiple of `modulo` (default 123)."""

import weir


class Multiple(weir.Filter):
    def __init__(self, params):
        params.allow_only(["field", "modulo"])
        self.modulo = params.int("modulo", 123, min=0, max=weir.U64_MAX)
        if self.modulo == 0:
            raise weir.InvalidParams("`modulo` must be at least 1")
        self.field = params.str("field", "auction")

    def filter(self, record):
        return record.object().u64(self.field) % self.modulo == 0


Lifecycle, Filter = weir.exports(Multiple)
