"""French formats a column can declare (`format: insee_commune`), checked twice over.

The official lists and validators come from `frformat` (data.gouv.fr's own library: INSEE's
Code officiel géographique by year, La Poste's postal codes, SIREN/SIRET through python-stdnum),
never from lists typed by hand here. Each format has:

- a **reference** check, one value at a time, that calls frformat itself; the Great Expectations
  custom expectation uses it, so plain GX is the reference implementation;
- a **vectorised** check on an Arrow array (set membership with `pyarrow.compute.is_in`, the
  Luhn checksum on the digits' bytes with numpy), which the fast engine runs on millions of rows.

Tests run both on the same values and require the same verdict for every value.

Email and phone are not frformat formats: they compile to plain regex expectations (see
`rules.py`), with the patterns below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Years of the Code officiel géographique frformat ships, per versioned list.
DEFAULT_COG_YEAR = "latest"
EMAIL_PATTERN = r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
# 0X XX XX XX XX or +33 X XX XX XX XX, with spaces, dots or dashes between pairs (or none).
PHONE_PATTERN = r"^(?:(?:\+|00)33[ .-]?(?:\(0\))?|0)[1-9](?:[ .-]?[0-9]{2}){4}$"
REGEX_FORMATS = {"email": EMAIL_PATTERN, "telephone": PHONE_PATTERN}


@dataclass(frozen=True)
class SetFormat:
    """A closed list of codes from frformat; `versioned` lists exist per COG year."""

    frformat_class: str
    versioned: bool
    description: str


SET_FORMATS = {
    "insee_commune": SetFormat("CodeCommuneInsee", True, "code commune INSEE du COG"),
    "code_postal": SetFormat("CodePostal", False, "code postal de La Poste"),
    "departement": SetFormat("CodeDepartement", True, "code de département du COG"),
    "region": SetFormat("CodeRegion", True, "code de région du COG"),
}
CHECKSUM_FORMATS = {"siren": 9, "siret": 14}
# Formats a single column can declare; `coordonnees_france` is declared on the longitude column.
COLUMN_FORMATS = (*SET_FORMATS, *CHECKSUM_FORMATS, *REGEX_FORMATS)
COORDINATES_FORMAT = "coordonnees_france"
ALL_FORMATS = (*COLUMN_FORMATS, COORDINATES_FORMAT)


def cog_years(name: str) -> list[str]:
    """The COG years frformat has for a versioned list (e.g. ['2023', '2024'])."""
    import frformat

    versioned = getattr(frformat, SET_FORMATS[name].frformat_class)._versioned_valid_values
    return [v.get_id() for v in versioned.ls()]


@cache
def _validator(name: str, year: str | None):
    import frformat

    if name == "siren":
        return frformat.Siren()
    if name == "siret":
        return frformat.Siret()
    fmt = SET_FORMATS[name]
    cls = getattr(frformat, fmt.frformat_class)
    return cls(year or DEFAULT_COG_YEAR) if fmt.versioned else cls()


def reference_is_valid(name: str, year: str | None = None) -> Callable[[str], bool]:
    """frformat's own check for one value (used by the GX expectation, row by row)."""
    return _validator(name, year).is_valid


@cache
def valid_codes(name: str, year: str | None = None) -> pa.Array:
    """The official list as an Arrow array, for `is_in`."""
    return pa.array(sorted(_validator(name, year).get_valid_values_set()), pa.string())


def vectorized_is_valid(name: str, values: pa.ChunkedArray, year: str | None = None) -> np.ndarray:
    """The verdict for every value of a string column (nulls: True, the domain excludes them)."""
    if name in SET_FORMATS:
        result = pc.or_(pc.is_in(values, value_set=valid_codes(name, year)), pc.is_null(values))
        return pc.fill_null(result, True).to_numpy(zero_copy_only=False)
    return _checksum_valid(values, CHECKSUM_FORMATS[name], la_poste=name == "siret")


def _exact_digits(values: pa.ChunkedArray | pa.Array, length: int) -> np.ndarray:
    """Which values are exactly `length` ASCII digits (nulls: False), without a regex: the byte
    length and an all-ASCII-digits test are two cheap kernels."""
    shaped = pc.and_(pc.equal(pc.binary_length(values), length), pc.ascii_is_decimal(values))
    return pc.fill_null(shaped, False).to_numpy(zero_copy_only=False)


def _digits_of(values: pa.ChunkedArray | pa.Array, length: int) -> np.ndarray:
    """The digits of values that are all exactly `length` ASCII digits, as a (rows, length) uint8
    matrix: such values lie end to end in the string data, so it is the data buffer reshaped."""
    if len(values) == 0:
        return np.zeros((0, length), dtype=np.uint8)
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    width = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(array.buffers()[1], dtype=width)[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return (data - ord("0")).reshape(len(array), length)


# A digit doubled by Luhn, with its digits summed (7 -> 14 -> 5).
_LUHN_DOUBLE = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.uint8)
_LA_POSTE_SIREN = np.array([3, 5, 6, 0, 0, 0, 0, 0, 0], dtype=np.uint8)
_LA_POSTE_HEAD_OFFICE = np.array([3, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 8], dtype=np.uint8)


def _luhn_ok(digits: np.ndarray) -> np.ndarray:
    length = digits.shape[1]
    total = np.zeros(len(digits), dtype=np.uint8)  # at most 9 per digit: 126 for a SIRET
    for position in range(length):  # column by column: no (rows, length) temporaries
        column = digits[:, position]
        total += _LUHN_DOUBLE[column] if (length - 1 - position) % 2 == 1 else column
    return total % 10 == 0


def _checksums_ok(digits: np.ndarray, la_poste: bool) -> np.ndarray:
    """python-stdnum's checks of SIREN (9 digits) or SIRET (14 digits) numbers, one per row."""
    ok = _luhn_ok(digits[:, :9])  # the SIREN part of a SIRET must pass Luhn too
    if digits.shape[1] > 9:
        whole = _luhn_ok(digits)
        if la_poste:
            # La Poste's establishments (SIREN 356000000) use a digit sum multiple of 5, except
            # its head office, as python-stdnum implements it.
            poste = _rows_starting_with(digits, _LA_POSTE_SIREN)
            poste = poste[~(digits[poste] == _LA_POSTE_HEAD_OFFICE).all(axis=1)]
            whole[poste] = digits[poste].sum(axis=1) % 5 == 0
        ok &= whole
    return ok


def _rows_starting_with(digits: np.ndarray, prefix: np.ndarray) -> np.ndarray:
    """Positions of the rows whose first digits are `prefix`, narrowed digit by digit (the first
    test rules out most rows, so no test runs on the whole matrix twice)."""
    rows = np.flatnonzero(digits[:, 0] == prefix[0])
    for position in range(1, len(prefix)):
        rows = rows[digits[rows, position] == prefix[position]]
    return rows


def _checksum_valid(values: pa.ChunkedArray, length: int, la_poste: bool) -> np.ndarray:
    """The verdict for every value (nulls: True). Values are taken as python-stdnum compacts them
    (spaces and dots removed, trimmed); most are already plain digits, so only the others are
    compacted, and the checksums run on the digits of the well-shaped values only."""
    verdict = ~values.is_valid().to_numpy(zero_copy_only=False)
    plain = _exact_digits(values, length)
    if plain.any():
        verdict[plain] = _checksums_ok(_digits_of(pc.filter(values, pa.array(plain)), length), la_poste)
    others = np.flatnonzero(~plain & ~verdict)
    if len(others):
        compact = pc.utf8_trim_whitespace(pc.replace_substring_regex(pc.take(values, pa.array(others)), r"[ .]", ""))
        shaped = _exact_digits(compact, length)
        if shaped.any():
            verdict[others[shaped]] = _checksums_ok(_digits_of(pc.filter(compact, pa.array(shaped)), length), la_poste)
    return verdict


# --- Coordinates inside France (metropolitan France and the five overseas départements) --------


@cache
def france_boxes() -> np.ndarray:
    """frformat's boxes as rows of (x_min, y_min, x_max, y_max), read from its polygons."""
    from frformat.formats.coordonnees_gps_francaises import POLYGONS

    return np.array([polygon.bounds for polygon in POLYGONS])


def reference_in_france(longitude: float, latitude: float) -> bool:
    from frformat import CoordonneesGPSFrancaises

    return CoordonneesGPSFrancaises.is_valid(float(longitude), float(latitude))


def vectorized_in_france(longitude: np.ndarray, latitude: np.ndarray) -> np.ndarray:
    # Shapely's `within` excludes the boundary: strict inequalities, as frformat decides.
    inside = np.zeros(len(longitude), dtype=bool)
    for x_min, y_min, x_max, y_max in france_boxes():
        inside |= (longitude > x_min) & (longitude < x_max) & (latitude > y_min) & (latitude < y_max)
    return inside
