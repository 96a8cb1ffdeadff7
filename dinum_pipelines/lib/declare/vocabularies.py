"""udata's controlled vocabularies, shared by the dataset registry and the catalog service.

The ids are the ones `GET /api/1/datasets/licenses/`, `/frequencies/`, `/resource_types/` and
`/spatial/granularities/` return on data.gouv.fr (udata 17.x), so a registry file that validates
here publishes unchanged to data.gouv.fr. Keep one copy: the catalog serves these lists and the
registry checks against them.
"""

from __future__ import annotations

from datetime import timedelta

# id -> (title, url)
LICENSES: dict[str, tuple[str, str]] = {
    "lov2": ("Licence Ouverte / Open Licence version 2.0", "https://www.etalab.gouv.fr/licence-ouverte-open-licence"),
    "fr-lo": ("Licence Ouverte / Open Licence", "https://www.etalab.gouv.fr/licence-ouverte-open-licence"),
    "odc-odbl": ("Open Data Commons Open Database License (ODbL)", "https://opendatacommons.org/licenses/odbl/summary/"),
    "odc-by": ("Open Data Commons Attribution License", "https://opendatacommons.org/licenses/by/summary/"),
    "odc-pddl": ("Open Data Commons Public Domain Dedication and Licence (PDDL)", "https://opendatacommons.org/licenses/pddl/summary/"),
    "cc-by": ("Creative Commons Attribution", "https://creativecommons.org/licenses/by/4.0/"),
    "cc-by-sa": ("Creative Commons Attribution Share-Alike", "https://creativecommons.org/licenses/by-sa/4.0/"),
    "cc-zero": ("Creative Commons CCZero", "https://creativecommons.org/publicdomain/zero/1.0/"),
    "other-at": ("Other (Attribution)", ""),
    "other-open": ("Other (Open)", ""),
    "other-pd": ("Other (Public Domain)", ""),
    "notspecified": ("License Not Specified", ""),
}

# Licences an administration may publish under without a special decree (décret n° 2017-638).
OPEN_LICENSES = frozenset(LICENSES) - {"notspecified"}

# id -> (label, delta until the next expected update, or None when there is no rhythm)
_MINUTE = timedelta(minutes=1)
FREQUENCIES: dict[str, tuple[str, timedelta | None]] = {
    "continuous": ("Real time", None),
    "oneMinute": ("Every minute", _MINUTE),
    "fiveMinutes": ("Every five minutes", 5 * _MINUTE),
    "tenMinutes": ("Every ten minutes", 10 * _MINUTE),
    "fifteenMinutes": ("Every fifteen minutes", 15 * _MINUTE),
    "thirtyMinutes": ("Every thirty minutes", 30 * _MINUTE),
    "hourly": ("Every hour", timedelta(hours=1)),
    "bihourly": ("Every two hours", timedelta(hours=2)),
    "trihourly": ("Every three hours", timedelta(hours=3)),
    "twelveHours": ("Every twelve hours", timedelta(hours=12)),
    "severalTimesADay": ("Several times a day", timedelta(hours=12)),
    "threeTimesADay": ("Three times a day", timedelta(hours=8)),
    "semidaily": ("Twice a day", timedelta(hours=12)),
    "daily": ("Daily", timedelta(days=1)),
    "fiveTimesAWeek": ("Five times a week", timedelta(days=2)),
    "threeTimesAWeek": ("Three times a week", timedelta(days=3)),
    "semiweekly": ("Twice a week", timedelta(days=4)),
    "weekly": ("Weekly", timedelta(days=7)),
    "biweekly": ("Every two weeks", timedelta(days=14)),
    "threeTimesAMonth": ("Three times a month", timedelta(days=10)),
    "semimonthly": ("Twice a month", timedelta(days=15)),
    "monthly": ("Monthly", timedelta(days=31)),
    "bimonthly": ("Every two months", timedelta(days=62)),
    "quarterly": ("Quarterly", timedelta(days=93)),
    "threeTimesAYear": ("Three times a year", timedelta(days=122)),
    "semiannual": ("Twice a year", timedelta(days=183)),
    "annual": ("Annual", timedelta(days=365)),
    "biennial": ("Every two years", timedelta(days=2 * 365)),
    "triennial": ("Every three years", timedelta(days=3 * 365)),
    "quadrennial": ("Every four years", timedelta(days=4 * 365)),
    "quinquennial": ("Every five years", timedelta(days=5 * 365)),
    "decennial": ("Every ten years", timedelta(days=10 * 365)),
    "bidecennial": ("Every twenty years", timedelta(days=20 * 365)),
    "tridecennial": ("Every thirty years", timedelta(days=30 * 365)),
    "punctual": ("Punctual", None),
    "irregular": ("Irregular", None),
    "never": ("Never", None),
    "notPlanned": ("Not planned", None),
    "other": ("Other", None),
    "unknown": ("Unknown", None),
}

# Inputs udata still accepts and maps onto the current ids.
LEGACY_FREQUENCIES: dict[str, str] = {
    "realtime": "continuous",
    "fourTimesADay": "severalTimesADay",
    "fourTimesAWeek": "other",
    "fortnighly": "biweekly",
    "biannual": "semiannual",
}

RESOURCE_TYPES: dict[str, str] = {
    "main": "Main file",
    "documentation": "Documentation",
    "update": "Update",
    "api": "API",
    "code": "Code repository",
    "other": "Other",
}

SPATIAL_GRANULARITIES: dict[str, str] = {
    "country-group": "Country group",
    "country": "Country",
    "country-subset": "Country subset",
    "fr:region": "French region",
    "fr:departement": "French county",
    "fr:arrondissement": "French arrondissement",
    "fr:commune": "French town",
    "fr:iris": "Iris (Insee districts)",
    "fr:canton": "French canton",
    "fr:collectivite": "French overseas collectivities",
    "fr:epci": "French intermunicipal (EPCI)",
    "poi": "Point of interest",
    "other": "Other",
}

# File formats udata counts as closed when computing the `has_open_format` quality criterion.
CLOSED_FORMATS = frozenset({"pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt"})


def normalize_frequency(value: str) -> str:
    """Map a legacy frequency id onto the current one; unknown ids are returned unchanged."""
    return LEGACY_FREQUENCIES.get(value, value)
