# weir-world: flat-map-function
"""Splits a line of text into lower-case words, one record per word, keyed
by the word (the tokenizer of the classic word count: runs of letters and
digits; everything else separates)."""

import re

import weir

WORD = re.compile(r"[^\W_]+")  # letters and digits (\w without the underscore)


@weir.flat_map
def split(record, out):
    for word in WORD.findall(record.text().lower()):
        w = word.encode()
        out.emit(w, key=w)


Lifecycle, FlatMapper = weir.exports(split)
