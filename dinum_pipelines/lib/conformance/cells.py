"""Judging one column's cells against its Table Schema field: type, then constraints.

The rules are frictionless 5's, value for value (`reference_value` and `violated_constraints`
are the reference, written after frictionless' field readers: `Decimal` for numbers, `strptime`
for dates, `validators` for e-mails and UUIDs, `rfc3986` for URIs...). Applied cell by cell in
Python they cost what frictionless costs, about 40 times a plain read, so they run in two tiers
as the cleaning step does:

- the spellings nearly every cell uses (`12`, `-3.5`, `2024-02-03`, any text for a string
  field) are recognised by one vectorised regular expression over the column (RE2, in Arrow)
  and converted by Arrow's casts; a cell the fast tier takes is one the reference accepts with
  the same value, so the fast tier only ever saves time;
- every other cell goes through the reference, once per distinct value (a column repeats its
  values: dates, communes, categories), with a bounded cache across batches.

Constraints run only on cells whose type is right, as in frictionless: a cell is either a
`type-error` or a set of `constraint-error`s. Patterns are anchored (`^(?:...)$`), and run in
RE2 except where RE2 and Python's `re` could disagree, which go to `re` (lib/patterns.py).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dinum_pipelines.lib import patterns
from dinum_pipelines.lib.clean.cleaning import fixed_layout, fixed_width_dates, string_bytes
from dinum_pipelines.lib.conformance.schema import Field

# Constraints each type supports (frictionless 5 ignores the others when it checks values).
SUPPORTED_CONSTRAINTS: dict[str, frozenset[str]] = {
    "string": frozenset({"required", "minLength", "maxLength", "pattern", "enum"}),
    "array": frozenset({"required", "minLength", "maxLength", "enum"}),
    "object": frozenset({"required", "minLength", "maxLength", "enum"}),
    "list": frozenset({"required", "minLength", "maxLength"}),
    **{
        kind: frozenset({"required", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum"})
        for kind in ("number", "integer", "date", "datetime", "time", "year", "yearmonth")
    },
    **{kind: frozenset({"required", "enum"}) for kind in ("boolean", "duration", "geopoint", "geojson", "any")},
}
ORDER_CONSTRAINTS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
# The Arrow type of the values compared for uniqueness and bounds.
KEY_TYPES: dict[str, pa.DataType] = {
    "number": pa.float64(),
    "integer": pa.float64(),
    "year": pa.float64(),
    "yearmonth": pa.int64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
    "time": pa.time64("us"),
}
# Distinct values whose judgement is remembered across batches, per column.
CACHE_LIMIT = 200_000


class _Invalid:
    """The reference's answer for a cell of the wrong type."""


INVALID = _Invalid()


# --- The reference: frictionless' value readers -------------------------------------------------


def _number(field: Field, text: Any, integer: bool) -> Any:
    if isinstance(text, bool):
        return INVALID
    if isinstance(text, (int, float, Decimal)) and not isinstance(text, bool):
        if integer:
            return int(text) if float(text).is_integer() else INVALID
        return Decimal(str(text))
    if not isinstance(text, str):
        return INVALID
    cell = text.strip()
    if not field.bare_number:
        cell = re.sub(r"((^[^-\d]*)|(\D*$))", "", cell)
    if not integer and field.number_options:
        cell = cell.replace(field.group_char, "") if field.group_char else cell
        if field.decimal_char != "." and "." in cell:
            return INVALID
        cell = cell.replace(field.decimal_char, ".")
    try:
        return int(cell) if integer else Decimal(cell)
    except (ValueError, InvalidOperation, TypeError):
        return INVALID


def _strptime(text: str, fmt: str) -> dt.datetime:
    return dt.datetime.strptime(text, fmt)


def _date(field: Field, text: Any) -> Any:
    if isinstance(text, dt.datetime):
        return text.date() if text.time() == dt.time() else INVALID
    if isinstance(text, dt.date):
        return text
    if not isinstance(text, str):
        return INVALID
    try:
        if field.format == "default":
            return _strptime(text, "%Y-%m-%d").date()
        if field.format == "any":
            from dateutil import parser

            return parser.parse(text).date()
        return _strptime(text, field.format).date()
    except Exception:  # noqa: BLE001 - any failure of the parser means "not a date"
        return INVALID


def _datetime(field: Field, text: Any) -> Any:
    if isinstance(text, dt.datetime):
        return text
    if not isinstance(text, str):
        return INVALID
    try:
        from dateutil import parser

        if field.format == "default":
            if len(text) < 19 or text[16] != ":":
                return INVALID
            return parser.isoparse(text)
        if field.format == "any":
            return parser.parse(text)
        return _strptime(text, field.format)
    except Exception:  # noqa: BLE001
        return INVALID


def _time(field: Field, text: Any) -> Any:
    if isinstance(text, dt.time):
        return text
    if not isinstance(text, str):
        return INVALID
    try:
        from dateutil import parser

        if field.format == "default":
            if len(text) < 8 or text[5] != ":":
                return INVALID
            return parser.isoparse(f"2000-01-01T{text}").timetz()
        if field.format == "any":
            return parser.parse(text).timetz()
        return _strptime(text, field.format).timetz()
    except Exception:  # noqa: BLE001
        return INVALID


def _year(text: Any) -> Any:
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif isinstance(text, str) and len(text) == 4:
        try:
            value = int(text)
        except ValueError:
            return INVALID
    else:
        return INVALID
    return value if 0 <= value <= 9999 else INVALID


def _yearmonth(text: Any) -> Any:
    if isinstance(text, (list, tuple)) and len(text) == 2:
        year, month = text
    elif isinstance(text, str):
        try:
            year, month = (int(part) for part in text.split("-"))
        except ValueError:
            return INVALID
    else:
        return INVALID
    return (year, month) if 1 <= month <= 12 else INVALID


def _duration(text: Any) -> Any:
    if not isinstance(text, str):
        return INVALID
    import isodate

    try:
        return isodate.parse_duration(text)
    except Exception:  # noqa: BLE001
        return INVALID


def _geopoint(field: Field, text: Any) -> Any:
    try:
        if isinstance(text, str):
            if field.format == "array":
                lon, lat = json.loads(text)
            elif field.format == "object":
                value = json.loads(text)
                if len(value) != 2:
                    return INVALID
                lon, lat = value["lon"], value["lat"]
            else:
                lon, lat = (part.strip() for part in text.split(","))
            lon, lat = Decimal(lon), Decimal(lat)
        else:
            lon, lat = (Decimal(part) for part in text)
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            return INVALID
        return (lon, lat)
    except Exception:  # noqa: BLE001
        return INVALID


_GEOMETRY_DEPTH = {"Point": 1, "MultiPoint": 2, "LineString": 2, "MultiLineString": 3, "Polygon": 3, "MultiPolygon": 4}


def _is_position_array(value: Any, depth: int) -> bool:
    if depth == 1:
        return isinstance(value, list) and len(value) >= 2 and all(
            isinstance(number, (int, float)) and not isinstance(number, bool) for number in value
        )
    return isinstance(value, list) and all(_is_position_array(item, depth - 1) for item in value)


def is_geojson(value: Any) -> bool:
    """A GeoJSON object by RFC 7946's structure (types and coordinate nesting)."""
    if not isinstance(value, dict):
        return False
    kind = value.get("type")
    if kind in _GEOMETRY_DEPTH:
        return _is_position_array(value.get("coordinates"), _GEOMETRY_DEPTH[kind])
    if kind == "GeometryCollection":
        return isinstance(value.get("geometries"), list) and all(is_geojson(item) for item in value["geometries"])
    if kind == "Feature":
        geometry = value.get("geometry")
        properties = value.get("properties")
        return (geometry is None or is_geojson(geometry)) and (properties is None or isinstance(properties, dict))
    if kind == "FeatureCollection":
        features = value.get("features")
        return isinstance(features, list) and all(is_geojson(item) and item.get("type") == "Feature" for item in features)
    return False


def _json(text: Any, kind: type) -> Any:
    if isinstance(text, kind):
        return text
    if not isinstance(text, str):
        return INVALID
    try:
        value = json.loads(text)
    except ValueError:
        return INVALID
    return value if isinstance(value, kind) else INVALID


def _string(field: Field, text: Any) -> Any:
    if not isinstance(text, str):
        return INVALID
    if field.format == "email":
        import validators

        return text if validators.email(text) is True else INVALID
    if field.format == "uuid":
        import validators

        return text if validators.uuid(text) is True else INVALID
    if field.format == "uri":
        import rfc3986
        from rfc3986 import exceptions, validators as uri_validators

        validator = uri_validators.Validator().require_presence_of("scheme")
        try:
            validator.validate(rfc3986.uri_reference(text))
        except exceptions.ValidationError:
            return INVALID
        return text
    if field.format == "binary":
        import base64
        import binascii

        try:
            base64.b64decode(text)
        except (binascii.Error, ValueError):
            return INVALID
    return text


def reference_value(field: Field, text: Any) -> Any:
    """The value frictionless reads from one cell of `field` (not missing), or INVALID."""
    kind = field.type
    if kind == "string":
        return _string(field, text)
    if kind in ("number", "integer"):
        return _number(field, text, kind == "integer")
    if kind == "boolean":
        if isinstance(text, bool):
            return text
        if text in field.true_values:
            return True
        if text in field.false_values:
            return False
        return INVALID
    if kind == "date":
        return _date(field, text)
    if kind == "datetime":
        return _datetime(field, text)
    if kind == "time":
        return _time(field, text)
    if kind == "year":
        return _year(text)
    if kind == "yearmonth":
        return _yearmonth(text)
    if kind == "duration":
        return _duration(text)
    if kind == "geopoint":
        return _geopoint(field, text)
    if kind == "geojson":
        value = _json(text, dict)
        if value is INVALID or field.format == "topojson":
            return value
        return value if is_geojson(value) else INVALID
    if kind == "object":
        return _json(text, dict)
    if kind == "array":
        return _json(text, list)
    if kind == "list":
        if not isinstance(text, str):
            return INVALID
        item = Field(name=field.name, type=field.item_type)
        items = [reference_value(item, part) for part in text.split(field.delimiter)]
        return INVALID if any(value is INVALID for value in items) else items
    return text  # any


def constraint_value(field: Field, name: str) -> Any:
    """A constraint's value read as the field reads cells (bounds and enum members)."""
    raw = field.constraints[name]
    if name == "enum":
        return [reference_value(field, member) for member in raw]
    if name in ORDER_CONSTRAINTS:
        return reference_value(field, raw)
    return raw


def _comparable(value: Any) -> Any:
    """Aware and naive times compare as UTC instants, as far as Python lets them."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, dt.time) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    return value


def item_judgement(field: Field, items: list[Any]) -> tuple[bool, tuple[str, ...]]:
    """An array's items judged by its `arrayItem` field: (every item of its type, constraints broken)."""
    item = field.array_item
    if item is None:
        return True, ()
    checks = constraint_values(item)
    broken: dict[str, None] = {}
    for value in items:
        if value is None:
            if item.required:
                broken["required"] = None
            continue
        read = reference_value(item, value)
        if read is INVALID:
            return False, ()
        broken.update(dict.fromkeys(violated_constraints(item, read, checks)))
    return True, tuple(broken)


def violated_constraints(field: Field, value: Any, checks: dict[str, Any]) -> tuple[str, ...]:
    """The constraints (other than required) a well-typed value breaks; `checks` from `constraint_values`."""
    broken = []
    for name, limit in checks.items():
        if name == "minLength" and len(value) < limit:
            broken.append(name)
        elif name == "maxLength" and len(value) > limit:
            broken.append(name)
        elif name == "pattern" and not limit.match(value):
            broken.append(name)
        elif name == "enum" and value not in limit:
            broken.append(name)
        elif name in ORDER_CONSTRAINTS:
            if limit is INVALID:
                continue
            if value != value:  # NaN is within no bound (frictionless says so too)
                broken.append(name)
                continue
            try:
                left, right = _comparable(value), _comparable(limit)
                ok = {
                    "minimum": lambda: left >= right,
                    "maximum": lambda: left <= right,
                    "exclusiveMinimum": lambda: left > right,
                    "exclusiveMaximum": lambda: left < right,
                }[name]()
            except TypeError:
                ok = False
            if not ok:
                broken.append(name)
    return tuple(broken)


def constraint_values(field: Field) -> dict[str, Any]:
    """The field's checkable constraints (besides required and unique), read for comparison."""
    supported = SUPPORTED_CONSTRAINTS.get(field.type, frozenset())
    checks: dict[str, Any] = {}
    for name in field.constraints:
        if name in ("required", "unique") or name not in supported or field.constraints[name] is None:
            continue
        if name == "pattern":
            # The whole value must match (Table Schema's XML Schema regex semantics): `a|b` is
            # `^(?:a|b)$`, where frictionless writes `^a|b$` (see the tests' deviations table).
            checks[name] = re.compile(f"^(?:{field.constraints[name]})$")
        else:
            checks[name] = constraint_value(field, name)
    return checks


def _key(field: Field, value: Any) -> Any:
    """The value as a scalar of the field's key type (uniqueness, bounds); text for the others."""
    kind = field.type
    if kind in ("number", "integer", "year"):
        return float(value)
    if kind == "yearmonth":
        return value[0] * 12 + value[1] - 1
    if kind in ("date", "boolean"):
        return value
    if kind == "datetime":
        return _comparable(value)
    if kind == "time":
        return _comparable(value)
    return None  # keyed by their text


# --- The fast tier ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FastTier:
    """Reads the cells it can in bulk: returns their positions (increasing) and key values."""

    read: Callable[[pa.Array], tuple[np.ndarray, pa.Array]]


def _plain_number_cells(cells: pa.Array, integer: bool, decimal: str = ".") -> np.ndarray:
    """Cells written `[+-]digits[<decimal>digits]` (`digits` for integers), found from the bytes
    without a regex; null cells: False. Every such cell is a number frictionless reads (`Decimal`,
    `int`) and Arrow casts once its decimal mark is a point."""
    count = len(cells)
    offsets, data = string_bytes(cells)
    lengths = np.diff(offsets)
    # Digits in the low 21 bits, decimal marks in the next 21, other points above: one running sum
    # counts the three (a cell longer than 2 million bytes is no plain number anyway).
    classes = ((data - np.uint8(48)) < 10).astype(np.int64) | ((data == ord(decimal)).astype(np.int64) << 21)
    if decimal != ".":
        classes |= (data == ord(".")).astype(np.int64) << 42
    running = np.zeros(data.size + 1, dtype=np.int64)
    np.cumsum(classes, out=running[1:])
    counts = running[offsets[1:]] - running[offsets[:-1]]
    digits, marks, points = counts & 0x1FFFFF, (counts >> 21) & 0x1FFFFF, counts >> 42
    first = data[np.minimum(offsets[:-1], max(data.size - 1, 0))] if data.size else np.zeros(count, dtype=np.uint8)
    signed = (lengths > 0) & ((first == ord("+")) | (first == ord("-")))
    # frictionless refuses a point where the decimal mark is another character.
    plain = (digits >= 1) & (digits + marks + signed == lengths) & (points == 0)
    # Integers of up to 15 digits are exact as float64 keys (uniqueness, bounds); longer ones go to the reference.
    plain &= (marks == 0) & (lengths <= 16) if integer else (marks <= 1) & (lengths <= 30)
    return plain & _valid(cells)


def _plain_numbers(field: Field, integer: bool) -> Callable[[pa.Array], tuple[np.ndarray, pa.Array]]:
    """Numbers as frictionless rewrites them (group characters dropped, the decimal mark made a
    point), the plainly written ones (see `_plain_number_cells`) cast by Arrow; the others are
    left to the reference."""
    decimal = field.decimal_char if field.number_options and not integer else "."
    group = field.group_char if field.number_options and not integer else ""

    def cast(cells: pa.Array) -> pa.Array:
        if decimal != ".":
            cells = pc.replace_substring(cells, decimal, ".")
        return pc.cast(cells, pa.float64())

    def read(cells: pa.Array) -> tuple[np.ndarray, pa.Array]:
        if group:
            cells = pc.replace_substring(cells, group, "")
        plain = _plain_number_cells(cells, integer, decimal)
        if plain.sum() == len(cells) - cells.null_count:
            return np.arange(len(cells)), cast(cells)
        positions = np.flatnonzero(plain)
        return positions, cast(cells.take(pa.array(positions)))

    return read


def _fixed_width(formats: tuple[str, ...], kind: str) -> Callable[[pa.Array], tuple[np.ndarray, pa.Array]] | None:
    """Dates that fill a fixed-width format exactly, read from their bytes (see cleaning.fixed_width_dates)."""
    layouts = [fixed_layout(fmt) for fmt in formats]
    if any(layout is None for layout in layouts):
        return None

    def read(cells: pa.Array) -> tuple[np.ndarray, pa.Array]:
        pending = _valid(cells)
        found, values = [], []
        for layout in layouts:
            positions, micros = fixed_width_dates(cells, pending, layout)
            pending[positions] = False
            found.append(positions)
            values.append(micros)
        positions, micros = np.concatenate(found), np.concatenate(values)
        order = np.argsort(positions, kind="stable")
        stamps = pa.array(micros[order], type=pa.timestamp("us"))
        return positions[order], stamps if kind == "datetime" else pc.cast(stamps, pa.date32())

    return read


def fast_tier(field: Field) -> _FastTier | None:
    """The vectorised reading of the field's common spellings, or None where there is none."""
    kind = field.type
    if kind in ("integer", "number"):
        decimal, group = field.decimal_char, field.group_char
        if field.number_options and (
            len(decimal) != 1 or decimal.isdigit() or decimal in "+-" or len(group) > 1 or (group and (group.isdigit() or group in "+-" or group == decimal))
        ):
            return None
        if not field.bare_number:
            return None  # frictionless strips leading and trailing non-digits first: the reference does that
        return _FastTier(_plain_numbers(field, kind == "integer"))
    if kind == "year":
        def read_years(cells: pa.Array) -> tuple[np.ndarray, pa.Array]:
            positions = np.flatnonzero(_true(pc.match_substring_regex(cells, r"^[0-9]{4}$")))
            return positions, pc.cast(cells.take(pa.array(positions)), pa.float64())

        return _FastTier(read_years)
    if kind == "date" and field.format != "any":
        read = _fixed_width(("%Y-%m-%d" if field.format == "default" else field.format,), "date")
        return _FastTier(read) if read else None
    if kind == "datetime" and field.format != "any":
        formats = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ") if field.format == "default" else (field.format,)
        read = _fixed_width(formats, "datetime")
        return _FastTier(read) if read else None
    return None


# --- Judging a column -----------------------------------------------------------------------------


@dataclass
class Judgement:
    """What one batch of a column's present cells (not missing) holds."""

    # Cells of the right type.
    type_ok: np.ndarray
    # Constraint name -> cells (of the right type) that break it.
    violations: dict[str, np.ndarray]
    # The values compared for uniqueness (null where the type is wrong).
    keys: pa.Array


class FieldJudge:
    """Judges the cells of one field, batch after batch, with a cache of distinct values."""

    def __init__(self, field: Field, *, fast: bool = True) -> None:
        self.field = field
        self.checks = constraint_values(field)
        self.key_type = KEY_TYPES.get(field.type, pa.large_string())
        self.fast = fast_tier(field) if fast else None
        self._re2 = fast  # patterns in RE2 where it reads them as `re` (else `re` for every value)
        self._cache: dict[str, tuple[bool, tuple[str, ...], Any]] = {}

    # The reference, one distinct value at a time.
    def _judge_value(self, text: str) -> tuple[bool, tuple[str, ...], Any]:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        value = reference_value(self.field, text)
        items_ok, item_broken = item_judgement(self.field, value) if value is not INVALID and self.field.array_item else (True, ())
        if value is INVALID or not items_ok:
            result: tuple[bool, tuple[str, ...], Any] = (False, (), None)
        else:
            key = _key(self.field, value)
            broken = violated_constraints(self.field, value, self.checks) + tuple(f"arrayItem.{name}" for name in item_broken)
            result = (True, broken, text if key is None else key)
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[text] = result
        return result

    def _reference(self, cells: pa.Array, valid: np.ndarray) -> Judgement:
        """The reference rules, once per distinct value of the valid cells."""
        distinct = pc.unique(cells).drop_null()
        if not len(distinct):
            return _nothing_to_judge(len(cells), self.key_type)
        results = [self._judge_value(text) for text in distinct.to_pylist()]
        positions = pc.fill_null(pc.index_in(cells, value_set=distinct), 0).to_numpy(zero_copy_only=False)
        ok = np.array([result[0] for result in results], dtype=bool)[positions] | ~valid
        names = {name for result in results for name in result[1]}
        violations = {
            name: np.array([name in result[1] for result in results], dtype=bool)[positions] & valid for name in sorted(names)
        }
        keys = pa.array([result[2] for result in results], type=self.key_type)
        return Judgement(ok, violations, keys.take(pa.array(positions, mask=~valid)))

    def judge(self, cells: pa.Array) -> Judgement:
        """Judge the non-null cells of a large_string array (nulls: missing cells, not judged).

        Every array of the answer has one entry per cell; null cells are of the right type, break
        no constraint and have a null key.
        """
        count = len(cells)
        if not count:
            return _nothing_to_judge(0, self.key_type)
        valid = _valid(cells)
        if self.field.type == "string" and self.field.format in ("default", "") and not (
            set(self.checks) - {"pattern", "enum", "minLength", "maxLength"}
        ):
            return self._judge_text(cells, valid)
        if self.fast is None:
            return self._reference(cells, valid)
        matched, fast_keys = self.fast.read(cells)
        fast = np.zeros(count, dtype=bool)
        fast[matched] = True
        slow = np.flatnonzero(valid & ~fast)
        violations = {name: np.zeros(count, dtype=bool) for name in self.checks}
        for name, mask in self._order_violations(fast_keys).items():
            violations[name][matched] = mask
        if not slow.size:
            keys = fast_keys if matched.size == count else _scatter(count, [(matched, fast_keys)], self.key_type)
            return Judgement(np.ones(count, dtype=bool), _broken_only(violations), keys)
        judged = self._reference(cells.take(pa.array(slow)), np.ones(slow.size, dtype=bool))
        type_ok = np.ones(count, dtype=bool)
        type_ok[slow] = judged.type_ok
        for name, mask in judged.violations.items():
            violations.setdefault(name, np.zeros(count, dtype=bool))[slow] = mask
        keys = _scatter(count, [(matched, fast_keys), (slow, judged.keys)], self.key_type)
        return Judgement(type_ok, _broken_only(violations), keys)

    def _order_violations(self, keys: pa.Array) -> dict[str, np.ndarray]:
        """Bounds and enum on key values (numbers, dates) computed by Arrow."""
        violations = {}
        comparisons = {
            "minimum": pc.less,
            "maximum": pc.greater,
            "exclusiveMinimum": pc.less_equal,
            "exclusiveMaximum": pc.greater_equal,
        }
        for name, limit in self.checks.items():
            if name in comparisons:
                if limit is INVALID:
                    continue
                bound = pa.scalar(_key(self.field, limit), type=self.key_type)
                broken = comparisons[name](keys, bound)
                if pa.types.is_floating(keys.type):
                    broken = pc.or_(broken, pc.is_nan(keys))  # NaN is within no bound
            elif name == "enum":
                members = pa.array([_key(self.field, member) for member in limit if member is not INVALID], type=self.key_type)
                broken = pc.invert(pc.is_in(keys, value_set=members))
            else:
                continue
            mask = pc.fill_null(broken, False).to_numpy(zero_copy_only=False)
            if mask.any():
                violations[name] = mask
        return violations

    def _judge_text(self, cells: pa.Array, valid: np.ndarray) -> Judgement:
        """A plain string field: every cell is of the right type; constraints vectorised."""
        violations: dict[str, np.ndarray] = {}
        lengths = None
        for name, limit in self.checks.items():
            if name in ("minLength", "maxLength"):
                lengths = pc.utf8_length(cells) if lengths is None else lengths
                mask = _true(((pc.less if name == "minLength" else pc.greater)(lengths, limit)))
            elif name == "enum":
                members = pa.array([member for member in limit if isinstance(member, str)], type=pa.large_string())
                mask = ~_true(pc.is_in(cells, value_set=members)) & valid
            else:
                mask = self._pattern_misses(cells, limit) & valid
            if mask.any():
                violations[name] = mask
        return Judgement(np.ones(len(cells), dtype=bool), violations, cells)

    def _pattern_misses(self, cells: pa.Array, compiled: re.Pattern[str]) -> np.ndarray:
        """Cells the pattern does not match (null cells: False)."""
        if _repetitive(cells):
            # Codes repeat (communes, postcodes, categories): match each distinct value once.
            encoded = pc.dictionary_encode(cells)
            misses = self._pattern_misses(encoded.dictionary, compiled)
            return misses[pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False)] & _valid(cells)
        return ~patterns.found(cells, compiled, re2=self._re2) & _valid(cells)


def _valid(array: pa.Array) -> np.ndarray:
    if array.null_count == 0:
        return np.ones(len(array), dtype=bool)
    return array.is_valid().to_numpy(zero_copy_only=False)


def _true(mask: pa.Array) -> np.ndarray:
    """A boolean array as numpy, nulls as False."""
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def _broken_only(violations: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: mask for name, mask in violations.items() if mask.any()}


def _nothing_to_judge(count: int, key_type: pa.DataType) -> Judgement:
    return Judgement(np.ones(count, dtype=bool), {}, pa.nulls(count, type=key_type))


# A column is worth dictionary-encoding when its first cells repeat this much.
_SAMPLE_CELLS = 16384
_REPETITIVE_SHARE = 0.5


def _repetitive(cells: pa.Array) -> bool:
    """Whether a long column repeats its values (a sample of its first cells has few distinct ones)."""
    if len(cells) <= 2 * _SAMPLE_CELLS:
        return False
    return pc.count_distinct(cells.slice(0, _SAMPLE_CELLS)).as_py() < _SAMPLE_CELLS * _REPETITIVE_SHARE


def _scatter(length: int, parts: list[tuple[np.ndarray, pa.Array]], key_type: pa.DataType) -> pa.Array:
    """One array of `length` values from arrays placed at the given positions; nulls elsewhere."""
    order = np.full(length, -1, dtype=np.int64)
    offset = 0
    arrays = []
    for positions, values in parts:
        order[positions] = np.arange(offset, offset + len(positions))
        offset += len(positions)
        arrays.append(values.cast(key_type) if values.type != key_type else values)
    combined = pa.concat_arrays(arrays) if arrays else pa.array([], type=key_type)
    return combined.take(pa.array(order, mask=order < 0))
