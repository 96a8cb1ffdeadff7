"""Regular expressions on Arrow text, answered as Python's `re` answers them, at RE2's speed.

The references this project is held to read patterns with Python's `re`: frictionless for a Table
Schema's `pattern`, GX's pandas engine for `expect_column_values_to_match_regex`. Arrow's regex
kernel runs RE2, which refuses part of `re`'s syntax (lookarounds, backreferences, possessive
quantifiers, `\\Z`) and reads some of the rest differently: `\\d`, `\\w`, `\\s`, `\\b` are ASCII
in RE2 and Unicode in `re`, a case-insensitive match folds letters its own way, and `re`'s `$`
also matches before a final newline. So RE2 judges the cells on which both engines agree, and
`re` the others (every cell when RE2 refuses the pattern), once per distinct value.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Syntax RE2 reads otherwise than `re` on non-ASCII text: Unicode classes, case-insensitivity.
_UNICODE_SENSITIVE = re.compile(r"\\[dDwWsSbB]|\(\?[a-zA-Z]*i[a-zA-Z]*[:)]")
# POSIX classes (`[[:alpha:]]`) are classes for RE2 and plain sets of characters for `re`.
_POSIX_CLASS = re.compile(r"\[:")


@functools.lru_cache(maxsize=256)
def _re2_reads_as_re(pattern: str) -> bool:
    """Whether RE2 takes `pattern` and reads it as `re` does (on ASCII text without a final newline)."""
    if _POSIX_CLASS.search(pattern):
        return False
    try:
        pc.match_substring_regex(pa.array(["x"]), pattern)
    except pa.ArrowInvalid:
        return False
    return True


def _true(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False) if len(mask) else np.zeros(0, dtype=bool)


def _found_by_re(cells: pa.Array, compiled: re.Pattern[str]) -> np.ndarray:
    distinct = pc.unique(cells).drop_null()
    if not len(distinct):
        return np.zeros(len(cells), dtype=bool)
    found = np.array([compiled.search(text) is not None for text in distinct.to_pylist()], dtype=bool)
    return found[pc.fill_null(pc.index_in(cells, value_set=distinct), 0).to_numpy(zero_copy_only=False)] & _true(cells.is_valid())


def found(cells: pa.Array | pa.ChunkedArray, compiled: re.Pattern[str], *, re2: bool = True) -> np.ndarray:
    """Whether `compiled.search` finds its pattern in each cell of a text array (a missing cell:
    False). `re2=False`: every distinct value by `re` (a reference to compare the fast path with)."""
    if isinstance(cells, pa.ChunkedArray):
        parts = [found(chunk, compiled, re2=re2) for chunk in cells.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
    pattern = compiled.pattern
    if not re2 or compiled.flags & ~re.UNICODE or not _re2_reads_as_re(pattern):
        return _found_by_re(cells, compiled)
    result = _true(pc.match_substring_regex(cells, pattern))
    doubtful = pc.ends_with(cells, "\n")
    if _UNICODE_SENSITIVE.search(pattern):
        doubtful = pc.or_(doubtful, pc.invert(pc.string_is_ascii(cells)))
    positions = np.flatnonzero(_true(doubtful))
    if positions.size:
        result[positions] = _found_by_re(cells.take(pa.array(positions)), compiled)
    return result


@functools.lru_cache(maxsize=256)
def compiled(pattern: str) -> re.Pattern[str]:
    """`re.compile(pattern)`, kept: a rule's pattern is compiled once, not once per batch."""
    return re.compile(pattern)
