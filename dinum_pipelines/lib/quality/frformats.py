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
    else:
        result = _checksum_valid(values, CHECKSUM_FORMATS[name], la_poste=name == "siret")
    return pc.fill_null(result, True).to_numpy(zero_copy_only=False)


def _digits_matrix(values: pa.ChunkedArray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Values as python-stdnum compacts them (spaces and dots removed, trimmed), which ones have
    exactly `length` ASCII digits, and those digits as a (rows, length) uint8 matrix."""
    exact = f"^[0-9]{{{length}}}$"
    plain = pc.fill_null(pc.match_substring_regex(values, exact), False).to_numpy(zero_copy_only=False)
    compact = values
    if not plain.all():  # separators or padding somewhere: compact those cells (most columns have none)
        others = pa.array(~plain & pc.is_valid(values).to_numpy(zero_copy_only=False))
        compact = pc.if_else(others, pc.utf8_trim_whitespace(pc.replace_substring_regex(values, r"[ .]", "")), values)
    shaped = pc.fill_null(pc.match_substring_regex(compact, exact), False).to_numpy(zero_copy_only=False) if not plain.all() else plain
    digits = np.zeros((len(values), length), dtype=np.uint8)
    if shaped.any():
        kept = pc.filter(compact, pa.array(shaped)).combine_chunks()
        data = np.frombuffer(kept.buffers()[2], dtype=np.uint8)
        width = np.int64 if pa.types.is_large_string(kept.type) else np.int32
        offsets = np.frombuffer(kept.buffers()[1], dtype=width)[kept.offset : kept.offset + len(kept) + 1]
        start = offsets[:-1, None] + np.arange(length)
        digits[shaped] = data[start] - ord("0")
    return shaped, digits


# A digit doubled by Luhn, with its digits summed (7 -> 14 -> 5).
_LUHN_DOUBLE = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.uint8)


def _luhn_ok(digits: np.ndarray) -> np.ndarray:
    length = digits.shape[1]
    total = np.zeros(len(digits), dtype=np.int32)
    for position in range(length):  # column by column: no (rows, length) temporaries
        column = digits[:, position]
        total += _LUHN_DOUBLE[column] if (length - 1 - position) % 2 == 1 else column
    return total % 10 == 0


def _checksum_valid(values: pa.ChunkedArray, length: int, la_poste: bool) -> pa.Array:
    shaped, digits = _digits_matrix(values, length)
    ok = shaped & _luhn_ok(digits[:, :9])  # the SIREN part of a SIRET must pass Luhn too
    if length > 9:
        whole = _luhn_ok(digits)
        if la_poste:
            # La Poste's establishments (SIREN 356000000) use a digit sum multiple of 5, except
            # its head office, as python-stdnum implements it.
            prefix = (digits[:, :9] == np.array([3, 5, 6, 0, 0, 0, 0, 0, 0])).all(axis=1)
            head_office = (digits == np.array([3, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 8])).all(axis=1)
            poste = prefix & ~head_office
            whole = np.where(poste, digits.sum(axis=1) % 5 == 0, whole)
        ok &= whole
    return pa.array(ok | ~pc.is_valid(values).to_numpy(zero_copy_only=False))


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
