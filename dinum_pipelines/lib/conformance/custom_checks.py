"""Validata's custom checks, which schema.data.gouv.fr schemas declare beside Table Schema.

A schema lists them under `custom_checks` (`{"name": "french-siret-value", "params": {"column":
"siret"}}`). Validata runs them after frictionless; frictionless itself ignores them. Each is
mapped onto a rule the project already has where one exists (SIRET, SIREN, telephone and the
coordinates inside France come from `quality/frformats.py`, the same checks the publication's
quality rules use), and reports Validata's own code, on the rows and cells where it fails.
Empty cells are never judged (that is `required`'s job), as in Validata.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dinum_pipelines.lib.conformance.faults import Fault, show_value
from dinum_pipelines.lib.quality import frformats

if TYPE_CHECKING:
    from dinum_pipelines.lib.conformance.schema import Schema

# Validata spells one check with underscores; the others with dashes.
ALIASES = {"french_gps_coordinates": "french-gps-coordinates"}
# The nine families of the nomenclature of acts sent to the prefecture (@ctes).
NOMENCLATURE_ACTES = (
    "Commande publique",
    "Urbanisme",
    "Domaine et patrimoine",
    "Fonction publique",
    "Institutions et vie politique",
    "Libertés publiques et pouvoirs de police",
    "Finances locales",
    "Domaines de compétences par thèmes",
    "Autres domaines de compétences",
)
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
}
# An OSM opening_hours value, in the forms French producers write (days, times, "off", "PH", "24/7").
_DAY = r"(?:Mo|Tu|We|Th|Fr|Sa|Su|PH|SH)"
_DAYS = rf"{_DAY}(?:-{_DAY})?(?:,{_DAY}(?:-{_DAY})?)*"
_TIME = r"(?:[01][0-9]|2[0-4]):[0-5][0-9]"
_TIMES = rf"{_TIME}-{_TIME}(?:,{_TIME}-{_TIME})*"
_MONTHS = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_RULE = rf"(?:{_MONTHS}(?:[ -][0-9]{{1,2}})?(?:-{_MONTHS}(?: [0-9]{{1,2}})?)? )?(?:{_DAYS}(?: {_TIMES}| off| closed)?|{_TIMES}|24/7)"
OPENING_HOURS = re.compile(rf"^{_RULE}(?:\s*[;,]\s*{_RULE})*$")


@dataclass
class BatchView:
    """One batch as custom checks see it: each field's text, missing cells and typed keys."""

    rows: np.ndarray
    # Rows that are not blank.
    keep: np.ndarray
    text: dict[str, pa.Array]
    missing: dict[str, np.ndarray]
    keys: dict[str, pa.Array]


@dataclass
class Check:
    code: str
    columns: tuple[str, ...]
    run_batch: Callable[[BatchView], Iterable[Fault]]

    def run(self, view: BatchView) -> Iterable[Fault]:
        if not all(column in view.text for column in self.columns):
            return []
        return self.run_batch(view)


def _present(view: BatchView, column: str) -> np.ndarray:
    return ~view.missing[column] & view.keep


def _cell_faults(code: str, column: str, view: BatchView, failed: np.ndarray, expected: str) -> list[Fault]:
    positions = np.flatnonzero(failed)
    values = view.text[column].take(pa.array(positions)).to_pylist()
    return [
        Fault(code=code, field=column, row=int(view.rows[position]), value=value, expected=expected, note=expected)
        for position, value in zip(positions, values)
    ]


def _format_check(code: str, column: str, fmt: str, expected: str) -> Check:
    def run(view: BatchView) -> list[Fault]:
        present = _present(view, column)
        cells = pc.utf8_trim_whitespace(view.text[column])
        if fmt in frformats.REGEX_FORMATS:
            valid = pc.fill_null(pc.match_substring_regex(cells, frformats.REGEX_FORMATS[fmt]), False).to_numpy(zero_copy_only=False)
        else:
            valid = frformats.vectorized_is_valid(fmt, pa.chunked_array([cells]))
        return _cell_faults(code, column, view, present & ~valid, expected)

    return Check(code, (column,), run)


def _coordinates(text: str) -> tuple[float, float] | None:
    """A geopoint cell in any of its three spellings, as (longitude, latitude)."""
    try:
        stripped = text.strip()
        if stripped.startswith("["):
            lon, lat = json.loads(stripped)
        elif stripped.startswith("{"):
            value = json.loads(stripped)
            lon, lat = value["lon"], value["lat"]
        else:
            lon, lat = (part.strip() for part in stripped.split(","))
        return float(lon), float(lat)
    except (ValueError, TypeError, KeyError):
        return None


def _gps_check(params: dict[str, Any]) -> Check:
    column = params.get("column")
    latitude, longitude = params.get("latitude_field"), params.get("longitude_field")
    columns = (column,) if column else (longitude, latitude)
    expected = "les coordonnées ne sont pas en France (métropole ou outre-mer) ; longitude et latitude sont peut-être inversées"

    def run(view: BatchView) -> list[Fault]:
        if column:
            present = _present(view, column)
            texts = view.text[column].to_pylist()
            points = [_coordinates(text) if ok and text is not None else None for text, ok in zip(texts, present)]
        else:
            present = _present(view, longitude) & _present(view, latitude)
            lons = view.keys[longitude].to_pylist()
            lats = view.keys[latitude].to_pylist()
            points = [(lo, la) if ok and lo is not None and la is not None else None for lo, la, ok in zip(lons, lats, present)]
        judged = np.array([point is not None for point in points], dtype=bool)
        lon = np.array([point[0] if point else 0.0 for point in points])
        lat = np.array([point[1] if point else 0.0 for point in points])
        outside = judged & ~frformats.vectorized_in_france(lon, lat)
        faults = []
        for position in np.flatnonzero(outside):
            shown = view.text[columns[0]][position].as_py() if column else f"{lon[position]}, {lat[position]}"
            faults.append(Fault(code="french-gps-coordinates", field=columns[0], row=int(view.rows[position]), value=shown, expected=expected, note=expected))
        return faults

    return Check("french-gps-coordinates", tuple(columns), run)


def _row_fault(code: str, view: BatchView, position: int, expected: str, field: str | None = None) -> Fault:
    return Fault(code=code, field=field, row=int(view.rows[position]), expected=expected, note=expected)


def _cohesive(params: dict[str, Any]) -> Check:
    columns = (params["column"], *params.get("othercolumns", []))

    def run(view: BatchView) -> list[Fault]:
        filled = np.vstack([_present(view, column) for column in columns])
        mixed = filled.any(axis=0) & ~filled.all(axis=0) & view.keep
        expected = f"les colonnes {', '.join(columns)} doivent être toutes remplies ou toutes vides"
        return [_row_fault("cohesive-columns-value", view, position, expected, columns[0]) for position in np.flatnonzero(mixed)]

    return Check("cohesive-columns-value", columns, run)


def _compare(params: dict[str, Any]) -> Check:
    first, second, op = params["column"], params["column2"], params.get("op", "==")
    compare = _OPERATORS.get(op, operator.eq)

    def run(view: BatchView) -> list[Fault]:
        both = _present(view, first) & _present(view, second)
        lefts, rights = view.keys[first].to_pylist(), view.keys[second].to_pylist()
        faults = []
        for position in np.flatnonzero(both):
            left, right = lefts[position], rights[position]
            if left is None or right is None:
                continue
            try:
                ok = compare(left, right)
            except TypeError:
                ok = False
            if not ok:
                expected = f"{first} ({show_value(left)}) devrait être {op} {second} ({show_value(right)})"
                faults.append(_row_fault("compare-columns-value", view, position, expected, first))
        return faults

    return Check("compare-columns-value", (first, second), run)


def _sum(params: dict[str, Any]) -> Check:
    total, parts = params["column"], tuple(params.get("columns", []))

    def run(view: BatchView) -> list[Fault]:
        filled = _present(view, total)
        for part in parts:
            filled &= _present(view, part)
        values = {name: view.keys[name].to_pylist() for name in (total, *parts)}
        faults = []
        for position in np.flatnonzero(filled):
            numbers = [values[name][position] for name in parts]
            if values[total][position] is None or any(number is None for number in numbers):
                continue
            if abs(values[total][position] - sum(numbers)) > 1e-9:
                expected = (
                    f"{total} ({show_value(values[total][position])}) devrait être la somme de "
                    f"{', '.join(parts)} ({show_value(float(sum(numbers)))})"
                )
                faults.append(_row_fault("sum-columns-value", view, position, expected, total))
        return faults

    return Check("sum-columns-value", (total, *parts), run)


def _year_interval(params: dict[str, Any]) -> Check:
    column = params["column"]
    year_only = str(params.get("allow-year-only", "no")).lower() in ("yes", "true", "1", "oui")

    def valid(text: str) -> bool:
        match = re.fullmatch(r"\s*([0-9]{4})\s*(?:/\s*([0-9]{4})\s*)?", text)
        if match is None or (match.group(2) is None and not year_only):
            return False
        return match.group(2) is None or int(match.group(1)) < int(match.group(2))

    expected = "n'est pas un intervalle d'années « AAAA/AAAA » croissant" + (" ni une année" if year_only else "")

    def run(view: BatchView) -> list[Fault]:
        present = _present(view, column)
        texts = view.text[column].to_pylist()
        failed = np.array([ok and not valid(text) for text, ok in zip(texts, present)], dtype=bool)
        return _cell_faults("year-interval-value", column, view, failed, expected)

    return Check("year-interval-value", (column,), run)


def _one_of_required(params: dict[str, Any]) -> Check:
    columns = (params["column1"], params["column2"])

    def run(view: BatchView) -> list[Fault]:
        empty = ~_present(view, columns[0]) & ~_present(view, columns[1]) & view.keep
        expected = f"l'une au moins des colonnes {columns[0]} et {columns[1]} doit être remplie"
        return [_row_fault("one-of-required", view, position, expected) for position in np.flatnonzero(empty)]

    return Check("one-of-required", columns, run)


def _text_rule(code: str, column: str, valid: Callable[[str], bool], expected: str) -> Check:
    def run(view: BatchView) -> list[Fault]:
        present = _present(view, column)
        distinct = pc.unique(view.text[column].filter(pa.array(present)))
        bad = pa.array([text for text in distinct.to_pylist() if not valid(text)], type=pa.large_string())
        if not len(bad):
            return []
        failed = present & pc.fill_null(pc.is_in(view.text[column], value_set=bad), False).to_numpy(zero_copy_only=False)
        return _cell_faults(code, column, view, failed, expected)

    return Check(code, (column,), run)


def _nomenclature(text: str) -> bool:
    family, _, rest = text.partition("/")
    return family.strip() in NOMENCLATURE_ACTES


def compile_checks(schema: Schema, present: set[str]) -> tuple[list[Check], list[str]]:
    """The schema's custom checks that can run on this file, and warnings for the others."""
    checks: list[Check] = []
    warnings: list[str] = []
    for declared in schema.custom_checks:
        name = ALIASES.get(str(declared.get("name")), str(declared.get("name")))
        params = declared.get("params") or {}
        try:
            check = _build(name, params)
        except (KeyError, TypeError):
            warnings.append(f"le contrôle « {name} » a des paramètres incomplets ({params}) ; non exécuté")
            continue
        if check is None:
            warnings.append(f"le contrôle « {name} » n'est pas connu ; non exécuté")
            continue
        absent = [column for column in check.columns if column not in present]
        if absent:
            warnings.append(f"le contrôle « {name} » porte sur des colonnes absentes ({', '.join(absent)}) ; non exécuté")
            continue
        checks.append(check)
    return checks, warnings


def _build(name: str, params: dict[str, Any]) -> Check | None:
    if name == "french-siret-value":
        return _format_check(name, params["column"], "siret", "n'est pas un numéro SIRET valide (14 chiffres, clé de contrôle)")
    if name == "french-siren-value":
        return _format_check(name, params["column"], "siren", "n'est pas un numéro SIREN valide (9 chiffres, clé de contrôle)")
    if name == "phone-number-value":
        return _format_check(name, params["column"], "telephone", "n'est pas un numéro de téléphone français valide")
    if name == "french-gps-coordinates":
        return _gps_check(params)
    if name == "opening-hours-value":
        return _text_rule(
            name, params["column"], lambda text: OPENING_HOURS.match(text.strip()) is not None,
            "n'est pas au format OpenStreetMap opening_hours (Mo-Fr 09:00-12:00)",
        )
    if name == "cohesive-columns-value":
        return _cohesive(params)
    if name == "compare-columns-value":
        return _compare(params)
    if name == "sum-columns-value":
        return _sum(params)
    if name == "year-interval-value":
        return _year_interval(params)
    if name == "one-of-required":
        return _one_of_required(params)
    if name == "nomenclature-actes-value":
        return _text_rule(name, params["column"], _nomenclature, "ne commence pas par une famille de la nomenclature des actes (« Urbanisme/… »)")
    return None
