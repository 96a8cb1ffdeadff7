"""How the project spells and compares column names, in one place that depends on nothing else.

Cleaning, the registry's Table Schema mapping and the conformance report all need these rules;
keeping them here lets those modules import them without importing each other.
"""

from __future__ import annotations

import re
import unicodedata


def snake_case(header: str) -> str:
    """`Montant attribué (€)` -> `montant_attribue`: ASCII, lower case, underscores."""
    ascii_text = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    if not name:
        return "column"
    return name if name[0].isalpha() else f"c_{name}"


def fold(label: str) -> str:
    """A label without case, accents or surrounding spaces: `Libellé ` -> `libelle`."""
    decomposed = unicodedata.normalize("NFKD", label.strip())
    return "".join(character for character in decomposed if not unicodedata.combining(character)).casefold()
