"""Regular expressions on Arrow text answer as Python's `re` does (lib/patterns.py), the reference
of frictionless and GX, whatever RE2 makes of the pattern."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest

from dinum_pipelines.lib import patterns

VALUES = [
    "75001", "00123", "2A004", "٧٥٠٠١", "１２３４５", "abc", "abc\n", "ABC", "été", "ÉTÉ", "aa", "ab", "aab", "",
    "x y", "x\u00a0y", "é", None, "Ça", "ça", "straße", "STRASSE",
]
PATTERNS = [
    r"^[0-9]{5}$",  # RE2 alone
    r"^(?!00)\d{5}$",  # a lookahead: RE2 refuses it
    r"^(.)\1",  # a backreference
    r"\d{5}",  # Unicode digits for re
    r"^\w+$",  # Unicode letters for re
    r"\bété\b",
    r"x\sy",  # a no-break space is \s for re
    r"^abc$",  # re's $ matches before a final newline
    r"(?i:ça)",  # case folding, scoped
    r"(?i)straße",
    r"^[[:alpha:]]+$",  # a POSIX class for RE2, a set of characters for re
    r"a*+b",  # possessive
    r"abc\Z",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_found_equals_pythons_search(pattern):
    compiled = re.compile(pattern)
    expected = np.array([value is not None and compiled.search(value) is not None for value in VALUES])
    cells = pa.array(VALUES, pa.large_string())
    assert patterns.found(cells, compiled).tolist() == expected.tolist()
    assert patterns.found(pa.chunked_array([cells.slice(0, 7), cells.slice(7)]), compiled).tolist() == expected.tolist()
    assert patterns.found(cells, compiled, re2=False).tolist() == expected.tolist()


def test_a_pattern_re2_reads_as_re_runs_in_re2_and_the_doubtful_cells_in_re(monkeypatch):
    judged = []
    original = patterns._found_by_re
    monkeypatch.setattr(patterns, "_found_by_re", lambda cells, compiled: judged.append(cells.to_pylist()) or original(cells, compiled))
    cells = pa.array(["75001", "٧٥٠٠١", "2A004", None], pa.large_string())
    assert patterns.found(cells, re.compile(r"^\d{5}$")).tolist() == [True, True, False, False]
    assert judged == [["٧٥٠٠١"]]  # only the non-ASCII cell, where \d differs
    judged.clear()
    assert patterns.found(cells, re.compile(r"^[0-9]{5}$")).tolist() == [True, False, False, False]
    assert judged == []
