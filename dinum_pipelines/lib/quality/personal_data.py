"""Recognising personal data in a column, so that it is never published by accident.

Open data must not carry data about persons unless a law makes it public (elected officials'
contacts, say), and the dataset's YAML must then say so, with the legal basis
(`personal_data: [{column, kinds, legal_basis}]`, see registry.py). Everything else found here
blocks publication.

What counts as personal, value by value (the `kinds`):

- `email`: an address of a person, i.e. a local part shaped like a name (`jean.dupont@`,
  `j.dupont@`, `marie-anne.martin@`) or any address at a consumer mailbox (gmail.com,
  orange.fr...). Functional addresses (`contact@`, `mairie@`, `service.urbanisme@`...) are common
  in open data and are not personal;
- `phone`: a French mobile number (06, 07, +33 6...): landlines in open data are offices';
- `nir`: a social security number (NIR) whose key checks (python-stdnum's rule);
- `iban`: an IBAN whose mod-97 check digits check (python-stdnum).

Plus one table-level kind, `name_birth_date`: a column of names next to a column of birth
dates identifies persons, whatever the values (found from the column names).

As with French formats, each kind has a reference check (one value at a time, python-stdnum for
NIR and IBAN, used by the GX custom expectation) and a vectorised one: a single regex pass over
the column (`candidate_pattern`, the union of every kind's shape, loosened for case and
surrounding whitespace) finds the few cells that may be personal, and the exact checks (Arrow
regexes, then the checksum libraries on the cells shaped like a NIR or an IBAN) run on those only.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

VALUE_KINDS = ("email", "phone", "nir", "iban")
NAME_BIRTH_DATE = "name_birth_date"
ALL_KINDS = (*VALUE_KINDS, NAME_BIRTH_DATE)

# Words that make an address functional when they are one of its local part's tokens.
FUNCTIONAL_WORDS = (
    "contact", "contacts", "mairie", "accueil", "info", "infos", "information", "secretariat", "secretariats",
    "administration", "admin", "direction", "dgs", "communication", "service", "services", "support",
    "webmaster", "postmaster", "noreply", "no-reply", "ne-pas-repondre", "courrier", "courriers", "standard",
    "rh", "drh", "compta", "comptabilite", "urbanisme", "etat-civil", "etatcivil", "marches", "commande",
    "commandes", "presse", "bonjour", "hello", "office", "reception", "scolaire", "ecole", "dpo", "rgpd",
    "cnil", "ville", "commune", "prefecture", "pref", "cabinet", "agence", "association", "asso",
    "bureau", "equipe", "team", "sales", "ventes", "facturation", "factures", "juridique", "culture",
    "tourisme", "jeunesse", "sport", "sports", "social", "ccas", "police", "technique", "travaux",
    "environnement", "dechets", "eau", "assainissement", "finances", "citoyen", "citoyennete",
    "elections", "guichet", "public", "relations", "partenariats", "recrutement", "emploi", "stage",
    "formation", "opendata", "data", "donnees", "sig", "informatique", "dsi", "si", "helpdesk",
)  # fmt: skip
WEBMAIL_DOMAINS = (
    "gmail.com", "googlemail.com", "yahoo.fr", "yahoo.com", "hotmail.fr", "hotmail.com", "outlook.fr",
    "outlook.com", "live.fr", "live.com", "msn.com", "orange.fr", "wanadoo.fr", "free.fr", "sfr.fr",
    "neuf.fr", "laposte.net", "bbox.fr", "aol.com", "icloud.com", "me.com", "protonmail.com", "proton.me",
    "gmx.fr", "gmx.com", "numericable.fr", "club-internet.fr", "aliceadsl.fr", "cegetel.net",
)  # fmt: skip

_WORDS = "|".join(re.escape(w) for w in FUNCTIONAL_WORDS)
# Lower-cased value shapes, RE2- and Python-compatible (the two engines use the same patterns).
EMAIL_SHAPE = r"^[a-z0-9._%+'-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}$"
NAME_LIKE_LOCAL = r"^[a-z]+(?:-[a-z]+)*\.[a-z]+(?:-[a-z]+)*[0-9]{0,2}@"
FUNCTIONAL_LOCAL = rf"^(?:[a-z0-9%+'-]*[._-])?(?:{_WORDS})(?:[._0-9-][a-z0-9._%+'-]*)?@"
WEBMAIL = r"@(?:" + "|".join(re.escape(d) for d in WEBMAIL_DOMAINS) + r")$"
MOBILE_PHONE = r"^(?:(?:\+|00)33[ .-]?(?:\(0\))?|0)[67](?:[ .-]?[0-9]{2}){4}$"
# Shapes only: the key is checked by python-stdnum on the cells that have them.
NIR_SHAPE = r"^[1-478] ?[0-9]{2} ?[0-9]{2} ?(?:[0-9]{2}|2[AB]) ?[0-9]{3} ?[0-9]{3} ?[0-9]{2}$"
IBAN_SHAPE = r"^[A-Z]{2}[0-9]{2}(?:[ -]?[A-Z0-9]){11,30}$"

# Column names (snake_case, as the registry writes them) that hold persons' names or birth dates.
NAME_COLUMN = re.compile(r"^(?:nom|prenom|prenoms|nom_prenom|prenom_nom|nom_usage|nom_naissance|nom_de_naissance|"
                         r"name|first_name|last_name|firstname|lastname|surname|given_name|nom_(?:elu|agent|personne|titulaire|beneficiaire)|"
                         r"prenom_(?:elu|agent|personne|titulaire|beneficiaire))$")
BIRTH_DATE_COLUMN = re.compile(r"^(?:date_(?:de_)?naissance(?:_\w+)?|naissance|ddn|birth_?date|date_of_birth|dob)$")

_PYTHON = {
    name: re.compile(pattern)
    for name, pattern in {
        "email": EMAIL_SHAPE, "name": NAME_LIKE_LOCAL, "functional": FUNCTIONAL_LOCAL, "webmail": WEBMAIL,
        "phone": MOBILE_PHONE, "nir": NIR_SHAPE, "iban": IBAN_SHAPE,
    }.items()
}  # fmt: skip


def _is_nir(value: str) -> bool:
    from stdnum.fr import nir

    return nir.is_valid(value)


def _is_iban(value: str) -> bool:
    from stdnum import iban

    return iban.is_valid(value)


def reference_is_personal(value: str, kinds: list[str]) -> bool:
    """Whether one value is personal data of one of `kinds` (reference, value by value)."""
    text = str(value).strip()
    lower = text.lower()
    if "email" in kinds and _PYTHON["email"].search(lower):
        if not _PYTHON["functional"].search(lower) and (_PYTHON["name"].search(lower) or _PYTHON["webmail"].search(lower)):
            return True
    if "phone" in kinds and _PYTHON["phone"].search(text):
        return True
    upper = text.upper()
    if "nir" in kinds and _PYTHON["nir"].search(upper) and _is_nir(upper):
        return True
    return "iban" in kinds and bool(_PYTHON["iban"].search(upper)) and _is_iban(upper)


def _matches(values: pa.ChunkedArray | pa.Array, pattern: str) -> np.ndarray:
    return pc.fill_null(pc.match_substring_regex(values, pattern), False).to_numpy(zero_copy_only=False)


def _checked(values: pa.Array, shaped: np.ndarray, check) -> np.ndarray:
    """`check` run on the few cells of the right shape only."""
    result = np.zeros(len(values), dtype=bool)
    positions = np.flatnonzero(shaped)
    if len(positions):
        cells = pc.take(values, pa.array(positions)).to_pylist()
        result[positions] = [check(cell) for cell in cells]
    return result


def _exact_verdict(cells: pa.Array, kinds: list[str]) -> np.ndarray:
    """`reference_is_personal` for every cell, with Arrow kernels (run on the candidates only)."""
    text = pc.utf8_trim_whitespace(cells)
    personal = np.zeros(len(cells), dtype=bool)
    if "email" in kinds:
        lower = pc.utf8_lower(text)
        shaped = _matches(lower, EMAIL_SHAPE) & ~_matches(lower, FUNCTIONAL_LOCAL)
        personal |= shaped & (_matches(lower, NAME_LIKE_LOCAL) | _matches(lower, WEBMAIL))
    if "phone" in kinds:
        personal |= _matches(text, MOBILE_PHONE)
    upper = pc.utf8_upper(text)
    if "nir" in kinds:
        personal |= _checked(upper, _matches(upper, NIR_SHAPE), _is_nir)
    if "iban" in kinds:
        personal |= _checked(upper, _matches(upper, IBAN_SHAPE), _is_iban)
    return personal


def _whole(shape: str) -> str:
    """A shape without its anchors, to be embedded in a larger pattern."""
    if not (shape.startswith("^") and shape.endswith("$")):
        raise ValueError(f"{shape!r} is not anchored at both ends")
    return shape[1:-1]


def _any_case(pattern: str) -> str:
    """`pattern`, whose letters are upper-case ASCII in character classes only, accepting any
    ASCII letter and any non-ASCII character where it wants one of them: a superset of the values
    that match `pattern` once upper-cased (some non-ASCII letters upper-case to ASCII: `ı` to `I`)."""
    outside = re.sub(r"\[[^\]]*\]|\\.", "", pattern)
    if re.search("[A-Za-z]", outside):
        raise ValueError(f"{pattern!r} has letters outside character classes")
    return re.sub(r"\[([^\]]*[A-Z][^\]]*)\]", r"[\1a-z\\x{80}-\\x{10FFFF}]", pattern)


# The candidate scan: one regex pass over a column finds every cell that *may* be personal data,
# i.e. a superset of what `_exact_verdict` accepts, whatever the case and the surrounding
# whitespace (trimmed by the exact checks; no letter or digit is whitespace). An address is
# personal only with a name-like local part (so a dot before its @) or a consumer mailbox's domain
# (in any case); non-ASCII characters can lower-case to ASCII letters no case-insensitive match
# folds (`İ` to `i`), so addresses with one are candidates too. Numbers are one of the shapes.
EMAIL_CANDIDATE = r"(?s:\..*@|@(?i:" + "|".join(re.escape(d) for d in WEBMAIL_DOMAINS) + r")|[^\x00-\x7F].*@|@.*[^\x00-\x7F])"
NUMBER_SHAPES = {"phone": MOBILE_PHONE, "nir": NIR_SHAPE, "iban": IBAN_SHAPE}


def candidate_pattern(kinds: list[str]) -> str | None:
    """The one regex that finds the cells that may be personal data of `kinds` (None: no kind)."""
    alternatives = [EMAIL_CANDIDATE] if "email" in kinds else []
    numbers = [_any_case(_whole(shape)) for kind, shape in NUMBER_SHAPES.items() if kind in kinds]
    if numbers:
        alternatives.append(rf"^[^0-9A-Za-z+]*(?:{'|'.join(numbers)})[^0-9A-Za-z]*$")
    return "|".join(f"(?:{alternative})" for alternative in alternatives) or None


def _has_character(values: pa.ChunkedArray, character: str) -> bool:
    """Whether any value of a string column holds the ASCII `character` (a scan of the raw string
    data, which costs a fraction of a regex pass)."""
    for chunk in values.chunks:
        if len(chunk) == 0 or chunk.buffers()[2] is None:
            continue
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(chunk.buffers()[1], dtype=width)[chunk.offset : chunk.offset + len(chunk) + 1]
        data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
        if (data == ord(character)).any():
            return True
    return False


def vectorized_is_personal(values: pa.ChunkedArray, kinds: list[str]) -> np.ndarray:
    """The verdict for every value of a string column (nulls: False): one regex pass finds the
    candidates, the exact checks run on those few cells only."""
    personal = np.zeros(len(values), dtype=bool)
    if "email" in kinds and not _has_character(values, "@"):  # no address anywhere: a simpler pass
        kinds = [kind for kind in kinds if kind != "email"]
    pattern = candidate_pattern(kinds)
    if pattern is None or len(values) == 0:
        return personal
    positions = np.flatnonzero(_matches(values, pattern))
    if len(positions):
        cells = pc.take(values, pa.array(positions))
        # Arrow and Python case-map a few non-ASCII letters differently (`İ`): such cells, rare
        # among candidates, get the reference check itself.
        ascii_only = pc.string_is_ascii(cells).to_numpy(zero_copy_only=False)
        personal[positions[ascii_only]] = _exact_verdict(pc.filter(cells, pa.array(ascii_only)), kinds)
        others = positions[~ascii_only]
        personal[others] = [reference_is_personal(cell, kinds) for cell in pc.take(values, pa.array(others)).to_pylist()]
    return personal


def name_birth_date_pairs(columns: list[str]) -> list[tuple[str, str]]:
    """(name column, birth date column) pairs among a table's column names."""
    names = [c for c in columns if NAME_COLUMN.match(c)]
    births = [c for c in columns if BIRTH_DATE_COLUMN.match(c)]
    return [(name, birth) for name in names for birth in births]
