"""`dinum-validate`, as a producer runs it: on every real pair, on URLs served over loopback,
and on inputs it cannot read (exit 2, saying why)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dinum_pipelines.cli.validate import main
from dinum_pipelines_tests.conformance import real_pairs
from dinum_pipelines_tests.httpserver import Reply, ScriptedServer

COMMAND = Path(sys.executable).with_name("dinum-validate")


@pytest.mark.parametrize("pair", real_pairs.PAIRS, ids=lambda pair: pair.id)
def test_every_real_pair_gets_a_usable_report(pair, capsys):
    status = main([str(pair.data), "--schema", str(pair.schema), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert status == (0 if document["valid"] else 1)
    assert document["error_count"] == len(document["errors"])
    assert all({"code", "field", "row", "value", "message"} <= error.keys() for error in document["errors"])
    assert document["valid"] == real_pairs.ours(pair).valid


def test_old_schemas_frictionless_refuses_are_read_with_warnings(capsys):
    for schema, data in (
        ("schema-arbre__schema.json", "schema-arbre__exemple-valide.csv"),  # a name with spaces
        ("schema-stationnement-cyclable__v0.1.0__schema.json", "schema-stationnement-cyclable__v0.1.0__exemple-valide.csv"),
    ):
        status = main([str(real_pairs.CONFORMANCE / data), "--schema", str(real_pairs.CONFORMANCE / schema)])
        assert status == 0, capsys.readouterr().out
    text = capsys.readouterr().out
    assert "Avertissement sur le schéma" in text and "Le fichier est conforme au schéma." in text


def test_the_installed_command_over_loopback_urls():
    pair = next(pair for pair in real_pairs.PAIRS if pair.data.name == "schema-stationnement__exemple-invalide.csv")
    with ScriptedServer() as server:
        server.plan(Reply(body=pair.schema.read_bytes()), Reply(body=pair.data.read_bytes()))
        result = subprocess.run(
            [str(COMMAND), f"{server.url}/files/parkings.csv", "--schema", f"{server.url}/schema.json"],
            capture_output=True, text=True, timeout=120,
        )
    assert result.returncode == 1, result.stderr
    assert f"Fichier : {server.url}/files/parkings.csv" in result.stdout
    assert "tarif_pmr" in result.stdout and "/tmp" not in result.stdout


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        ("missing-file", "no such file"),
        ("schema-not-json", "not valid JSON"),
        ("not-a-schema", "not a Table Schema"),
        ("html-as-xlsx", "not a readable xlsx workbook"),
        ("http-404", "HTTP 404"),
    ],
)
def test_unreadable_inputs_exit_2_saying_why(tmp_path, capsys, setup, needle):
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"fields": [{"name": "a"}]}), encoding="utf-8")
    data = tmp_path / "f.csv"
    data.write_text("a\n1\n", encoding="utf-8")
    arguments = [str(data), "--schema", str(schema)]
    server = ScriptedServer()
    if setup == "missing-file":
        arguments[0] = str(tmp_path / "absent.csv")
    elif setup == "schema-not-json":
        schema.write_text("<html>", encoding="utf-8")
    elif setup == "not-a-schema":
        schema.write_text('{"name": "x"}', encoding="utf-8")
    elif setup == "html-as-xlsx":
        page = tmp_path / "export.xlsx"
        page.write_text("<html><body>Maintenance</body></html>", encoding="utf-8")
        arguments[0] = str(page)
    with server:
        if setup == "http-404":
            server.plan(Reply(status=404, body=b"gone"))
            arguments[0] = f"{server.url}/f.csv"
        assert main(arguments) == 2
    error = capsys.readouterr().err
    assert needle in error and error.startswith("dinum-validate: ")
