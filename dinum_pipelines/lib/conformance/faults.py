"""The faults a conformance report lists, and how each is told to a producer.

A fault carries the code frictionless 5 gives the same fault when it matches columns by name
(`type-error`, `constraint-error`, `missing-label`...), so that reports can be compared with
Validata's and frictionless' own. Faults frictionless does not see have codes of our own, listed
in `OWN_CODES`; the Validata custom checks keep Validata's codes. Each code has a French title
and a message template that a producer understands without knowing Table Schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# code -> (French title, message template). Templates use the fault's fields by name.
CATALOGUE: dict[str, tuple[str, str]] = {
    # Header
    "blank-label": ("En-tête vide", "La colonne n° {field_number} n'a pas de nom dans l'en-tête."),
    "duplicate-label": (
        "En-tête en double",
        "Le nom de colonne « {field} » apparaît plusieurs fois dans l'en-tête (colonne n° {field_number}).",
    ),
    "missing-label": ("Colonne manquante", "La colonne « {field} » prévue par le schéma est absente du fichier."),
    "extra-label": (
        "Colonne inconnue",
        "La colonne « {value} » (n° {field_number}) n'est pas prévue par le schéma.",
    ),
    "label-case-or-accents": (
        "Nom de colonne mal orthographié",
        "La colonne « {value} » ne diffère de « {field} », prévue par le schéma, que par la casse ou les accents.",
    ),
    # Rows
    "blank-row": ("Ligne vide", "La ligne {row} est vide."),
    "extra-cell": (
        "Valeur surnuméraire",
        "La ligne {row} a une valeur de trop en colonne n° {field_number} (« {value} »).",
    ),
    "missing-cell": ("Valeur manquante", "La ligne {row} s'arrête avant la colonne « {field} »."),
    # Cells
    "type-error": ("Format incorrect", "La valeur « {value} » de la colonne « {field} », ligne {row}, {expected}."),
    "constraint-error": (
        "Valeur non conforme",
        "La valeur « {value} » de la colonne « {field} », ligne {row}, {expected}.",
    ),
    "unique-error": (
        "Valeur en double",
        "La valeur « {value} » de la colonne « {field} », ligne {row}, doit être unique ; {expected}.",
    ),
    "primary-key": ("Identifiant en double", "Ligne {row} : {expected}."),
    "unique-keys": ("Combinaison en double", "Ligne {row} : {expected}."),
    "foreign-key": ("Référence inconnue", "Ligne {row} : {expected}."),
    # Text and encoding (our own)
    "encoding-error": ("Encodage incorrect", "{expected}"),
    "bom-before-other-encoding": (
        "Marque d'ordre d'octets trompeuse",
        "Le fichier commence par une marque UTF-8 (BOM) mais le reste est encodé en {value} : "
        "enregistrez-le en UTF-8.",
    ),
    "replacement-character": (
        "Caractères détruits",
        "La valeur « {value} » de la colonne « {field} », ligne {row}, contient le caractère « � » : "
        "des lettres accentuées ont été perdues avant la publication.",
    ),
    "control-character": (
        "Caractère de contrôle",
        "La valeur « {value} » de la colonne « {field} », ligne {row}, contient un caractère de contrôle "
        "invisible (octet nul, saut de page…) : {expected}.",
    ),
    "mojibake": (
        "Accents mal encodés",
        "La valeur « {value} » de la colonne « {field} », ligne {row}, contient des accents mal "
        "encodés (« Ã© » au lieu de « é ») : le fichier a été converti deux fois.",
    ),
    # Validata custom checks
    "french-siret-value": ("SIRET invalide", "La valeur « {value} » de la colonne « {field} », ligne {row}, {expected}."),
    "french-siren-value": ("SIREN invalide", "La valeur « {value} » de la colonne « {field} », ligne {row}, {expected}."),
    "french-gps-coordinates": ("Coordonnées hors de France", "Ligne {row} : {expected}."),
    "phone-number-value": (
        "Numéro de téléphone invalide",
        "La valeur « {value} » de la colonne « {field} », ligne {row}, {expected}.",
    ),
    "opening-hours-value": (
        "Horaires d'ouverture invalides",
        "La valeur « {value} » de la colonne « {field} », ligne {row}, {expected}.",
    ),
    "cohesive-columns-value": ("Colonnes incohérentes", "Ligne {row} : {expected}."),
    "compare-columns-value": ("Comparaison non respectée", "Ligne {row} : {expected}."),
    "sum-columns-value": ("Somme incorrecte", "Ligne {row} : {expected}."),
    "year-interval-value": ("Intervalle d'années invalide", "La valeur « {value} » de la colonne « {field} », ligne {row}, {expected}."),
    "one-of-required": ("Colonnes toutes vides", "Ligne {row} : {expected}."),
    "nomenclature-actes-value": (
        "Nomenclature des actes invalide",
        "La valeur « {value} » de la colonne « {field} », ligne {row}, {expected}.",
    ),
}

# Codes frictionless 5 has no equivalent for (see the deviations table in the tests).
OWN_CODES = frozenset(
    {
        "label-case-or-accents", "unique-keys", "bom-before-other-encoding", "replacement-character", "mojibake",
        "control-character",
    }
)
HEADER_CODES = frozenset({"blank-label", "duplicate-label", "missing-label", "extra-label", "label-case-or-accents"})
# Faults of the file as a whole (no row, no field).
FILE_CODES = frozenset({"encoding-error", "bom-before-other-encoding"})


@dataclass(frozen=True)
class Fault:
    """One fault of a file against its schema.

    `row` is the row's number in the file as frictionless counts it (the header is row 1 when it
    is the first line; a record spanning several lines counts once); `field_number` is the
    column's position in the file, from 1. `expected` says in French what the value should be
    (it completes the message), `note` the same in frictionless' technical words.
    """

    code: str
    field: str | None = None
    field_number: int | None = None
    row: int | None = None
    value: str | None = None
    expected: str = ""
    note: str = ""
    # For constraint errors: which constraint (`pattern`, `enum`, `required`...).
    constraint: str | None = None

    @property
    def title(self) -> str:
        return CATALOGUE.get(self.code, (self.code, ""))[0]

    @property
    def message(self) -> str:
        template = CATALOGUE.get(self.code, (self.code, "{expected}"))[1]
        values: dict[str, Any] = {
            "field": self.field or "",
            "field_number": self.field_number if self.field_number is not None else "?",
            "row": self.row if self.row is not None else "?",
            "value": _shorten(self.value),
            "expected": self.expected,
        }
        return template.format(**values)

    def to_dict(self) -> dict[str, Any]:
        document = {
            "code": self.code,
            "field": self.field,
            "row": self.row,
            "value": self.value,
            "message": self.message,
            "field_number": self.field_number,
            "note": self.note,
        }
        if self.constraint is not None:
            document["constraint"] = self.constraint
        return document

    def sort_key(self) -> tuple[int, int, int]:
        # Faults of the whole file, then the header's, then rows in order, columns in order, a
        # row's own faults (keys, custom checks across columns) after its cells'.
        rank = 0 if self.code in FILE_CODES else 1 if self.row is None else 2
        return rank, self.row or 0, self.field_number if self.field_number is not None else 1 << 30


_CONTROL = re.compile(r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]")


def _shorten(value: str | None, limit: int = 120) -> str:
    """A cell as a message shows it: control characters spelled out (`\\x00`), long text cut."""
    if value is None:
        return ""
    value = _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def show_value(value: Any) -> str:
    """A typed value as a message shows it: `60`, not `60.0`; dates in ISO 8601."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
