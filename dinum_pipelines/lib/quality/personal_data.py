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
NIR and IBAN, used by the GX custom expectation) and a vectorised one (Arrow regexes over the
column; the checksum libraries only see the few cells shaped like a NIR or an IBAN).
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


def _matches(values: pa.ChunkedArray, pattern: str) -> np.ndarray:
    return pc.fill_null(pc.match_substring_regex(values, pattern), False).to_numpy(zero_copy_only=False)


def _checked(values: pa.ChunkedArray, shaped: np.ndarray, check) -> np.ndarray:
    """`check` run on the few cells of the right shape only."""
    result = np.zeros(len(values), dtype=bool)
    positions = np.flatnonzero(shaped)
    if len(positions):
        cells = pc.take(values, pa.array(positions)).to_pylist()
        result[positions] = [check(cell) for cell in cells]
    return result


# Cheap first passes: only cells with an `@`, or starting like a number or an IBAN and at least 10
# characters long, can be personal data of a value kind; the full checks run on those cells only.
_NUMBER_LIKE = r"^\s*(?:\+|[0-9]|[A-Za-z]{2}[0-9]{2}).{9}"
_NAME_OR_WEBMAIL = f"(?:{NAME_LIKE_LOCAL})|(?:{WEBMAIL})"


def _subset_check(values: pa.ChunkedArray, candidates: np.ndarray, check) -> np.ndarray:
    """`check` (Arrow array -> bool mask) run on the candidate cells only, scattered back."""
    result = np.zeros(len(values), dtype=bool)
    positions = np.flatnonzero(candidates)
    if len(positions):
        result[positions] = check(pc.take(values, pa.array(positions)))
    return result


def _personal_email(cells: pa.ChunkedArray) -> np.ndarray:
    lower = pc.utf8_lower(pc.utf8_trim_whitespace(cells))
    # Names and consumer mailboxes are rare among functional addresses: test them first.
    return _subset_check(lower, _matches(lower, _NAME_OR_WEBMAIL), lambda c: _matches(c, EMAIL_SHAPE) & ~_matches(c, FUNCTIONAL_LOCAL))


def _personal_number(cells: pa.ChunkedArray, kinds: list[str]) -> np.ndarray:
    text = pc.utf8_trim_whitespace(cells)
    personal = np.zeros(len(cells), dtype=bool)
    if "phone" in kinds:
        personal |= _matches(text, MOBILE_PHONE)
    upper = pc.utf8_upper(text) if ("nir" in kinds or "iban" in kinds) else text
    if "nir" in kinds:
        personal |= _checked(upper, _matches(upper, NIR_SHAPE), _is_nir)
    if "iban" in kinds:
        personal |= _checked(upper, _matches(upper, IBAN_SHAPE), _is_iban)
    return personal


def vectorized_is_personal(values: pa.ChunkedArray, kinds: list[str]) -> np.ndarray:
    """The verdict for every value of a string column (nulls: False)."""
    personal = np.zeros(len(values), dtype=bool)
    if "email" in kinds:
        at = pc.fill_null(pc.match_substring(values, "@"), False).to_numpy(zero_copy_only=False)
        personal |= _subset_check(values, at, _personal_email)
    numbers = [kind for kind in ("phone", "nir", "iban") if kind in kinds]
    if numbers:
        personal |= _subset_check(values, _matches(values, _NUMBER_LIKE), lambda cells: _personal_number(cells, numbers))
    return personal


def name_birth_date_pairs(columns: list[str]) -> list[tuple[str, str]]:
    """(name column, birth date column) pairs among a table's column names."""
    names = [c for c in columns if NAME_COLUMN.match(c)]
    births = [c for c in columns if BIRTH_DATE_COLUMN.match(c)]
    return [(name, birth) for name in names for birth in births]
