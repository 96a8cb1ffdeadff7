"""The vectorised personal-data scan agrees with the value-by-value reference on tricky spellings.

The fast scan finds candidates with one loosened regex per column and checks only those; any
value it lets through unchecked would be personal data published. Seeded mutations of real
shapes (padding with Unicode spaces, case, Turkish dotted I, inserted punctuation) probe that.
"""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from dinum_pipelines.lib.quality.personal_data import reference_is_personal, vectorized_is_personal

SHAPES = [
    "06 12 34 56 78", "+33 7 12 34 56 78", "0033 (0)6 12 34 56 78", "+33(0)612345678", "01 42 76 40 40",
    "0612345678", "07.12.34.56.78", "07-12-34-56-78", "1 84 12 76 451 089 46", "184127645108947",
    "2 90 02 2A 004 123 41", "290022a00412341", "1 84 12 76 451 089 47", "FR76 3000 6000 0112 3456 7890 189",
    "FR76 3000 6000 0112 3456 7890 188", "GB82WEST12345698765432", "gb82west12345698765432",
    "gb82 west 1234 5698 7654 32", "ıt60x0542811101000000123456", "jean.dupont@gmail.com",
    "m.martin@ville-dijon.fr", "contact@mairie-brest.fr", "anne-marie.durand@nice.fr", "JEAN.DUPONT@GMAIL.COM",
    "jim@GMAİL.COM", "service.urbanisme@ville.fr", "Jean.Dupont@Ville.FR", "jéan.dupont@ville.fr",
    "info@mairie-76498.fr", "2020-123456", "LD DES CHÂTAIGNIERS", "", "a", "@", ".@", "jean.dupont12@x.fr",
]
PADS = ["", " ", "\u00a0", "\t", "\u2003", "\n", " x", "\u3000"]
KINDS = [["email", "phone", "nir", "iban"], ["phone", "nir", "iban"], ["email"], ["nir"], ["iban"], ["phone"]]


def tricky_values(seed: int = 1, mutations: int = 3000) -> list[str | None]:
    values: list[str | None] = [left + shape + right for shape in SHAPES for left in PADS for right in PADS[:4]]
    values += [None, "None"]
    rng = random.Random(seed)
    for _ in range(mutations):
        shape = rng.choice(SHAPES)
        at = rng.randrange(len(shape) + 1)
        values.append(shape[:at] + rng.choice(" .-@A1éıİ\u00a0") + shape[at:])
    return values


@pytest.mark.parametrize("kinds", KINDS, ids="+".join)
def test_fast_scan_equals_the_reference(kinds):
    values = tricky_values()
    # Two chunks, as a Parquet file read in row groups gives.
    column = pa.chunked_array([pa.array(values[:500], pa.large_string()), pa.array(values[500:], pa.large_string())])
    fast = vectorized_is_personal(column, kinds)
    reference = np.array([value is not None and reference_is_personal(value, kinds) for value in values])
    differing = [(values[i], bool(reference[i])) for i in np.flatnonzero(fast != reference)[:10]]
    assert differing == []
    assert reference.sum() > 0  # the sample does hold personal data of these kinds
