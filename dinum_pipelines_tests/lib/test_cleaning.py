"""French numbers and dates, codes as text, blanks and spaces, and nothing dropped silently."""

from __future__ import annotations

import random
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dinum_pipelines.lib.clean import cleaning

from dinum_pipelines.lib.clean import tables
from dinum_pipelines.lib.clean.cleaning import (
    DEFAULT_DATE_FORMATS,
    DEFAULT_DATETIME_FORMATS,
    clean_table,
    normalize_text,
    parse_dates,
    parse_numbers,
    snake_case,
)
from dinum_pipelines.lib.declare.registry import DatasetSpec

BASE = {
    "slug": "ds_test",
    "title": "Jeu de test",
    "description": "x" * 120,
    "organization": {"slug": "org", "name": "Org"},
    "source": {"url": "http://127.0.0.1:9/a.csv", "format": "csv"},
    "license": "lov2",
    "frequency": "monthly",
}


def spec(columns, **extra) -> DatasetSpec:
    return DatasetSpec.model_validate({**BASE, "columns": columns, **extra})


def text(values) -> pd.Series:
    return pd.Series(values, dtype="str")


def test_french_numbers():
    parsed = parse_numbers(text(["26 956,00", "1\u00a0234,5", "1\u202f000", "-3,5", "12", "1.234,5"]), ",")
    assert parsed.tolist() == [26956.0, 1234.5, 1000.0, -3.5, 12.0, 1234.5]


def test_point_decimal_numbers():
    assert parse_numbers(text(["3.25", "1 000.5"]), ".").tolist() == [3.25, 1000.5]


def test_mixed_date_formats_to_iso():
    parsed = parse_dates(text(["03/02/2024", "2024-02-03", "2024/02/03", "31/02/2024"]), ("%d/%m/%Y", "%Y-%m-%d", "%Y/%m/%d"))
    assert [d.date().isoformat() if pd.notna(d) else None for d in parsed] == ["2024-02-03"] * 3 + [None]


def test_snake_case_headers():
    assert snake_case("Montant attribué (€)") == "montant_attribue"
    assert snake_case("B/T/Q") == "b_t_q"
    assert snake_case("1 Articles CGI") == "c_1_articles_cgi"


def test_clean_table_types_renames_and_reports():
    raw = pd.DataFrame(
        {
            "Code INSEE": text(["01053", " 2A004 ", "97411", ""]),
            "Montant (€)": text(["26 956,00", "7,5", "n/a", None]),
            "Date de décision": text(["03/02/2024", "2024-02-04", "31/02/2024", "  "]),
            "Remarque": text(["  ok ", "", None, "x"]),
        }
    )
    cleaned, report = clean_table(
        raw,
        spec(
            [
                {"name": "code_commune", "source": "Code INSEE"},
                {"name": "montant", "source": "Montant (€)", "type": "number"},
                {"name": "date_decision", "source": "Date de décision", "type": "date"},
            ]
        ),
        ",",
    )
    assert list(cleaned.columns) == ["code_commune", "montant", "date_decision", "remarque"]
    assert cleaned["code_commune"].tolist()[:3] == ["01053", "2A004", "97411"]
    assert pd.isna(cleaned["code_commune"].iloc[3])
    assert cleaned["montant"].tolist()[:2] == [26956.0, 7.5]
    assert cleaned["remarque"].tolist()[0] == "ok" and pd.isna(cleaned["remarque"].iloc[1])
    issues = {issue.column: issue for issue in report.issues}
    assert issues["montant"].count == 1 and issues["montant"].samples == ["n/a"] and issues["montant"].rows == [3]
    assert issues["date_decision"].samples == ["31/02/2024"] and issues["date_decision"].rows == [3]
    assert report.renamed["Code INSEE"] == "code_commune"


def test_integer_column_refuses_fractions():
    raw = pd.DataFrame({"n": text(["12", "3,5", "1 000"])})
    cleaned, report = clean_table(raw, spec([{"name": "n", "type": "integer"}]), ",")
    assert str(cleaned["n"].dtype) == "Int64"
    assert cleaned["n"].tolist()[0] == 12 and cleaned["n"].tolist()[2] == 1000
    assert report.issues[0].samples == ["3,5"]


def test_booleans():
    raw = pd.DataFrame({"b": text(["Oui", "non", "VRAI", "peut-être"])})
    cleaned, report = clean_table(raw, spec([{"name": "b", "type": "boolean"}]), ",")
    assert cleaned["b"].tolist()[:3] == [True, False, True]
    assert report.issues[0].samples == ["peut-être"]




# --- The fast tier (vectorised over the bytes) must give exactly what the general rules give. ---

SPACES = re.compile(r"[\s\u00a0\u202f]")


def reference_numbers(values: pd.Series, decimal: str) -> pd.Series:
    """The rules as first written, cell by cell with Python's regex and `pd.to_numeric`."""
    stripped = values.astype("str").str.strip()
    text = stripped.where(stripped != "", None).str.replace(SPACES, "", regex=True)
    if decimal == ",":
        text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    return pd.to_numeric(text, errors="coerce").astype("float64")


def reference_dates(values: pd.Series, formats) -> pd.Series:
    """The rules as first written: each format in turn on the trimmed cells still unparsed."""
    stripped = values.astype("str").str.strip()
    text = stripped.where(stripped != "", None)
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    pending = text.notna()
    for fmt in formats:
        parsed = pd.to_datetime(text[pending], format=fmt, errors="coerce")
        hit = parsed.notna()
        result.loc[parsed.index[hit]] = parsed[hit]
        pending.loc[parsed.index[hit]] = False
    return result


def number_spellings(count: int, seed: int) -> list[str | None]:
    """Plain, French, padded, signed, exotic and wrong spellings of numbers, in a seeded mix."""
    rng = random.Random(seed)
    pieces = ["0", "7", "12", "345", "6789", "000", " ", "\u00a0", "\u202f", "\t", ".", ",", "-", "+", "e", "E3", "x"]
    fixed = ["", "  ", "inf", "-Infinity", "nan", "NaN", "n/a", "1e5", "-0", "-0,0", "+,5", "5,", ",", "-", "1" * 16, "9" * 20, "0" * 18 + "1", "١٢"]
    cells: list[str | None] = [None, *fixed]
    while len(cells) < count:
        cells.append("".join(rng.choice(pieces) for _ in range(rng.randint(1, 7))))
    return cells


@pytest.fixture(params=[3, 1 << 16], ids=["tiny-batches", "default-batches"])
def batch_rows(request, monkeypatch):
    monkeypatch.setattr(cleaning, "BATCH_ROWS", request.param)
    return request.param


@pytest.mark.parametrize("decimal", [",", "."])
def test_numbers_match_the_general_rules(decimal, batch_rows):
    values = text(number_spellings(4000, seed=4))
    parsed, expected = parse_numbers(values, decimal), reference_numbers(values, decimal)
    np.testing.assert_array_equal(parsed.to_numpy(), expected.to_numpy())
    assert (np.signbit(parsed.to_numpy()) == np.signbit(expected.to_numpy())).all()


def test_french_numbers_thousands_separators_and_padding():
    parsed = parse_numbers(text([" 1 234 567,89 ", "1\u00a0234\u00a0567,8", "-1\u202f000", "1.234.567,5", "+7", "\t12\t", "   ", None]), ",")
    assert parsed.tolist()[:6] == [1234567.89, 1234567.8, -1000.0, 1234567.5, 7.0, 12.0]
    assert parsed.iloc[6:].isna().all()


def date_spellings(count: int, seed: int) -> list[str | None]:
    """Dates and date-times in every default format, valid or not (31/02, month 13, hour 24...)."""
    rng = random.Random(seed)
    years = ["0000", "0001", "1900", "2000", "2023", "2024", "9999", "24"]
    cells: list[str | None] = [
        None, "", "  ", "x", "3/2/2024", " 03/02/2024 ", " 03/02/2024", "2024-2-3", "20240203", "03/02/2024T",
        "03/02/2024 10:20:60", "2024-02-03T10:20:60", "2024-02-03 24:00:00", "29/02/1900", "29/02/2000",
    ]  # fmt: skip
    while len(cells) < count:
        day, month = f"{rng.randint(0, 32):02d}", f"{rng.randint(0, 13):02d}"
        time = f"{rng.randint(0, 24):02d}:{rng.randint(0, 60):02d}:{rng.randint(0, 61):02d}"
        year = rng.choice(years)
        cells.append(
            rng.choice(
                [
                    f"{day}/{month}/{year}", f"{year}-{month}-{day}", f"{year}/{month}/{day}", f"{day}-{month}-{year}",
                    f"{day}.{month}.{year}", f"{year}-{month}-{day}T{time}", f"{year}-{month}-{day} {time}",
                    f"{day}/{month}/{year} {time}", f"{day}/{month}/{year} {time[:5]}", f"{day}/{month}/{year}".replace("0", " ", 1),
                ]
            )
        )  # fmt: skip
    return cells


@pytest.mark.parametrize(
    "formats",
    [DEFAULT_DATE_FORMATS, DEFAULT_DATETIME_FORMATS, ("%Y-%m-%d", "%d/%m/%Y", "%d %B %Y"), (" %d/%m/%Y", "%Y%m%d")],
)
def test_dates_match_the_general_rules(formats, batch_rows):
    values = text(date_spellings(3000, seed=7) + ["3 février 2024", "03 February 2024"])
    pd.testing.assert_series_equal(parse_dates(values, formats), reference_dates(values, formats))


def test_mixed_date_formats_in_one_column():
    values = text(["03/02/2024", "2024-02-04", "5/2/2024", " 06/02/2024", "29/02/2023", "29/02/2024", "2024/02/07", None])
    parsed = parse_dates(values, DEFAULT_DATE_FORMATS)
    assert [d.date().isoformat() if pd.notna(d) else None for d in parsed] == [
        "2024-02-03", "2024-02-04", "2024-02-05", "2024-02-06", None, "2024-02-29", "2024-02-07", None,
    ]  # fmt: skip


def test_failures_are_reported_with_their_rows_across_batches(batch_rows):
    amounts = ["1 000,5"] * 10
    amounts[1], amounts[4], amounts[8] = " n/a ", "12,5,0", "#VALEUR!"
    days = ["03/02/2024"] * 10
    days[2], days[9] = "31/02/2024", "2024-13-01"
    rooms = ["3"] * 10
    rooms[0], rooms[7] = "3,5", "inf"
    raw = pd.DataFrame({"montant": text(amounts), "jour": text(days), "pieces": text(rooms)})
    columns = [{"name": "montant", "type": "number"}, {"name": "jour", "type": "date"}, {"name": "pieces", "type": "integer"}]
    cleaned, report = clean_table(raw, spec(columns), ",")
    issues = {issue.column: (issue.count, issue.samples, issue.rows) for issue in report.issues}
    assert issues == {
        "montant": (3, ["n/a", "12,5,0", "#VALEUR!"], [2, 5, 9]),
        "jour": (2, ["31/02/2024", "2024-13-01"], [3, 10]),
        "pieces": (2, ["3,5", "inf"], [1, 8]),
    }
    assert cleaned["montant"].iloc[0] == 1000.5 and cleaned["pieces"].iloc[1] == 3


def test_no_report_when_nothing_fails():
    # "k" keeps the rows from being blank ones, which cleaning drops.
    raw = pd.DataFrame({"k": text(list("abcd")), "n": text(["1", " ", None, "2,0"]), "d": text(["03/02/2024", "", None, " "])})
    cleaned, report = clean_table(raw, spec([{"name": "k"}, {"name": "n", "type": "integer"}, {"name": "d", "type": "date"}]), ",")
    assert report.issues == []
    assert cleaned["n"].tolist()[3] == 2 and cleaned["n"].isna().tolist() == [False, True, True, False]


def test_integers_refuse_infinities_and_numbers_beyond_int64():
    raw = pd.DataFrame({"n": text(["1e3", "inf", "9" * 20, "-12"])})
    cleaned, report = clean_table(raw, spec([{"name": "n", "type": "integer"}]), ",")
    assert cleaned["n"].tolist()[0] == 1000 and cleaned["n"].tolist()[3] == -12
    assert report.issues[0].rows == [2, 3]


def test_chunked_and_object_columns():
    chunked = pa.chunked_array([pa.array(["1,5", " x "]), pa.array([None, "2 000"]), pa.array(["y"])])
    raw = pd.DataFrame({"a": cleaning.TEXT_DTYPE.__from_arrow__(chunked), "b": pd.Series(["1", None, "z", "2", "3"], dtype=object)})
    cleaned, report = clean_table(raw, spec([{"name": "a", "type": "number"}, {"name": "b", "type": "number"}]), ",")
    assert cleaned["a"].tolist()[::3] == [1.5, 2000.0]
    assert [(i.column, i.samples, i.rows) for i in report.issues] == [("a", ["x", "y"], [2, 5]), ("b", ["z"], [3])]


def test_text_that_needs_no_trimming_is_not_copied():
    values = text(["Ajaccio", "Évreux", "Crèvecœur", None, "Aÿ"])
    cleaned = normalize_text(values)
    assert cleaned.array.__arrow_array__().chunk(0).buffers()[2].address == values.array.__arrow_array__().chunk(0).buffers()[2].address
    assert normalize_text(text(["Aÿ\u00a0", "x"])).tolist() == ["Aÿ", "x"]
    assert normalize_text(text(["\u2003", "x"])).isna().tolist() == [True, False]
    assert normalize_text(text(["", "x", "y", "z", "w", "v", "u", "t", "s"])).isna().tolist() == [True] + [False] * 8


def test_clean_table_round_trips_through_parquet(tmp_path):
    raw = pd.DataFrame(
        {
            "code": text(["01053", "2A004", None, "01053", "01053", "2A004"]),
            "montant": text(["26 956,00", "7,5", "", "1", "1", "1"]),
            "pieces": text(["3", None, "4", "4", "4", "4"]),
            "jour": text(["03/02/2024", "2024-02-04", None, None, None, None]),
            "reference": text(["r1", "r2", "r3", "r4", "r5", "r6"]),
        }
    )
    columns = [{"name": "code"}, {"name": "montant", "type": "number"}, {"name": "pieces", "type": "integer"}, {"name": "jour", "type": "date"},
               {"name": "reference"}]
    dataset = spec(columns)
    cleaned, _ = clean_table(raw, dataset, ",")
    path = tmp_path / "clean.parquet"
    tables.write_parquet(tables.to_arrow(cleaned, dataset), path)
    back = tables.read_parquet(path)
    assert back["code"].tolist()[:2] == ["01053", "2A004"] and back["montant"].tolist()[:2] == [26956.0, 7.5]
    assert back["pieces"].tolist()[0] == 3 and [d.isoformat() for d in back["jour"][:2]] == ["2024-02-03", "2024-02-04"]
    # Dictionaries for the columns that repeat their values, not for floats nor identifiers.
    encodings = {column.path_in_schema: column.encodings for column in map(pq.ParquetFile(path).metadata.row_group(0).column, range(5))}
    assert {name for name, used in encodings.items() if "RLE_DICTIONARY" in used} == {"code", "pieces", "jour"}


DUPLICATE_KEY_COLUMNS = [
    {"name": "siret", "source": "SIRET"},
    {"name": "montant", "source": "Montant", "type": "number"},
]
# Data rows 1..6: row 3 repeats row 1 once cleaned (spaces, "1 000,00" vs "1000,00");
# row 5 shares row 2's key with another amount; row 6 repeats row 5.
DUPLICATE_KEY_RAW = {
    "SIRET": ["13002526500013", "11000201100044", " 13002526500013", "21750001600019", "11000201100044", "11000201100044"],
    "Montant": ["1 000,00", "5,5", "1000,00", "7", "6,5", "6,5"],
}


def clean_with_duplicates(policy: str | None) -> tuple[pd.DataFrame, cleaning.CleaningReport]:
    extra = {"primary_key": ["siret"]} | ({"on_duplicate_key": policy} if policy else {})
    raw = pd.DataFrame({name: text(values) for name, values in DUPLICATE_KEY_RAW.items()})
    return clean_table(raw, spec(DUPLICATE_KEY_COLUMNS, **extra), ",")


def test_identical_rows_on_the_key_are_dropped_and_conflicts_kept_by_default():
    cleaned, report = clean_with_duplicates(None)
    assert cleaned["siret"].tolist() == ["13002526500013", "11000201100044", "21750001600019", "11000201100044"]
    assert cleaned["montant"].tolist() == [1000.0, 5.5, 7.0, 6.5]
    duplicates = report.duplicates
    assert (duplicates.policy, duplicates.dropped, duplicates.dropped_rows) == ("drop_identical", 2, [3, 6])
    assert (duplicates.conflicting, duplicates.conflicting_rows) == (2, [2, 5])
    assert duplicates.conflicting_keys == [["11000201100044"]]
    assert "data rows [2, 5]" in duplicates.describe()
    assert (report.rows_in, report.rows_out) == (6, 4)
    assert cleaning.CleaningReport.from_dict(report.to_dict()) == report


@pytest.mark.parametrize(
    ("policy", "amounts", "dropped_rows"),
    [("keep_first", [1000.0, 5.5, 7.0], [3, 5, 6]), ("keep_last", [1000.0, 7.0, 6.5], [1, 2, 5])],
)
def test_keep_first_or_last_resolves_conflicts(policy, amounts, dropped_rows):
    cleaned, report = clean_with_duplicates(policy)
    assert sorted(cleaned["montant"].tolist()) == sorted(amounts)
    assert cleaned["siret"].is_unique
    assert report.duplicates.dropped_rows == dropped_rows and report.duplicates.conflicting == 0


def test_keep_all_drops_nothing_and_reports_every_repeated_key():
    cleaned, report = clean_with_duplicates("keep_all")
    assert len(cleaned) == 6 and report.duplicates.dropped == 0
    assert report.duplicates.conflicting_rows == [1, 2, 3, 5, 6]


def test_unique_keys_give_no_duplicate_report():
    raw = pd.DataFrame({"SIRET": text(["1", "2"]), "Montant": text(["1", "2"])})
    _, report = clean_table(raw, spec(DUPLICATE_KEY_COLUMNS, primary_key=["siret"]), ",")
    assert report.duplicates is None and report.to_dict()["duplicates"] is None


def test_zero_pad_gives_codes_stored_as_numbers_their_leading_zeros_back():
    raw = pd.DataFrame({"k": text(list("abcdefg")), "CP": text(["1000", " 2600", "75001", "2A004", "", None, "123456"])})
    cleaned, _ = clean_table(raw, spec([{"name": "k"}, {"name": "code_postal", "source": "CP", "zero_pad": 5}]), ",")
    values = cleaned["code_postal"].tolist()
    assert values[:4] == ["01000", "02600", "75001", "2A004"]
    assert pd.isna(values[4]) and pd.isna(values[5]) and values[6] == "123456"


def test_zero_pad_is_refused_on_a_number_column():
    with pytest.raises(ValueError, match="zero_pad: only applies to string columns"):
        spec([{"name": "montant", "type": "number", "zero_pad": 5}])


def test_datetimes_with_a_utc_offset_become_utc_and_others_stay_as_written():
    values = text(["2024-02-03T10:00:00+01:00", "2024-07-03T10:00:00.250+0200", "2024-02-03T10:00:00Z", "2024-02-03 10:00:00", "03/02/2024 10:00", "2024-02-03T10:00:00+25:00"])
    parsed = parse_dates(values, DEFAULT_DATETIME_FORMATS)
    assert [str(v) for v in parsed[:5]] == [
        "2024-02-03 09:00:00", "2024-07-03 08:00:00.250000", "2024-02-03 10:00:00", "2024-02-03 10:00:00", "2024-02-03 10:00:00",
    ]
    assert pd.isna(parsed.iloc[5])  # not an offset: reported, not guessed
