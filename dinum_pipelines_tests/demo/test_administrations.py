"""The generated files are reproducible and carry the faults the pipeline must handle."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from dinum_pipelines.demo.administrations import (
    COMMUNES,
    DEMO_FILES,
    SUBVENTIONS_HEADER,
    bornes_recharge_json,
    effectifs_ecoles_csv,
    group_thousands,
    subventions_associations_csv,
    uai,
)

_HASH_ALL = (
    "import hashlib\n"
    "from dinum_pipelines.demo.administrations import DEMO_FILES\n"
    "for f in DEMO_FILES: print(f.dataset, hashlib.sha256(f.generate()).hexdigest())\n"
)


def _hashes() -> dict[str, str]:
    return {f.dataset: hashlib.sha256(f.generate()).hexdigest() for f in DEMO_FILES}


def test_same_bytes_on_every_call() -> None:
    assert _hashes() == _hashes()


@pytest.mark.parametrize("hash_seed", ["1", "4242"])
def test_same_bytes_in_another_process(hash_seed: str) -> None:
    # A fresh interpreter with another hash seed catches set/dict-order or clock dependence.
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    output = subprocess.run([sys.executable, "-c", _HASH_ALL], env=env, capture_output=True, text=True, check=True)
    assert dict(line.split() for line in output.stdout.splitlines()) == _hashes()


def test_subventions_is_cp1252_not_utf8_nor_latin1() -> None:
    content = subventions_associations_csv()
    with pytest.raises(UnicodeDecodeError):
        content.decode("utf-8")
    text = content.decode("cp1252")
    for char in ("œ", "€", "’", "é"):
        assert char in text
    # Those characters are exactly what ISO-8859-1 cannot represent.
    with pytest.raises(UnicodeEncodeError):
        text.encode("iso-8859-1")


def test_subventions_shape_and_faults() -> None:
    content = subventions_associations_csv()
    text = content.decode("cp1252")
    lines = text.split("\r\n")
    assert lines[-1] == "" and "\n" not in text.replace("\r\n", "")  # CRLF everywhere, nothing else
    assert lines[0].split(";") == list(SUBVENTIONS_HEADER)
    frame = pd.read_csv(io.BytesIO(content), sep=";", encoding="cp1252", dtype=str, keep_default_na=False)
    assert 300 <= len(frame) <= 2000

    codes = set(frame["Code INSEE"])
    assert {"01053", "2A004", "2B033", "97411"} <= codes
    assert any(code.startswith("0") for code in frame["Code postal"])

    amounts = frame["Montant attribué (€)"]
    assert amounts.str.fullmatch(r"\d{1,3}(?:[ \u00a0]\d{3})*,\d{2}|\d+,\d{2}").all()
    assert amounts.str.contains(" ").any() and amounts.str.contains("\u00a0").any()
    assert frame["Date de décision"].str.fullmatch(r"\d{2}/\d{2}/\d{4}").all()
    assert (frame["Date de versement"] == "").any() and (frame["Numéro RNA"] == "").any()
    padded = frame["Nom de l'association"] != frame["Nom de l'association"].str.strip()
    assert 0 < padded.sum() < len(frame) / 10


def test_bornes_records_are_nested_and_typed() -> None:
    document = json.loads(bornes_recharge_json().decode("utf-8"))
    records = document["data"]["records"]
    assert document["meta"]["nombre_enregistrements"] == len(records) >= 300
    codes = {r["code_insee_commune"] for r in records}
    assert all(isinstance(code, str) for code in codes)
    assert {"01053", "2A004", "2B033", "97411"} <= codes
    assert all(isinstance(r["nbre_pdc"], int) and isinstance(r["latitude"], float) for r in records)
    assert any(r["gratuit"] is None for r in records)


def test_effectifs_is_utf8_with_bom_and_keeps_leading_zeros() -> None:
    content = effectifs_ecoles_csv()
    assert content.startswith(b"\xef\xbb\xbf")
    frame = pd.read_csv(io.BytesIO(content), sep=";", encoding="utf-8-sig", dtype=str)
    assert frame["Numéro UAI"].str.startswith("00").any()
    assert frame["Code commune"].str.startswith("0").any()


def test_helpers() -> None:
    assert group_thousands(26956, "\u00a0") == "26\u00a0956"
    assert group_thousands(1234567, " ") == "1 234 567"
    assert group_thousands(12, " ") == "12"
    # UAI check letter: digits mod 23 over the alphabet without I, O, Q.
    assert uai("75", 1234) == "0751234" + "ABCDEFGHJKLMNPRSTUVWXYZ"[751234 % 23]
    assert uai("2B", 1).startswith("720")
    assert len({c.insee for c in COMMUNES}) == len(COMMUNES)
