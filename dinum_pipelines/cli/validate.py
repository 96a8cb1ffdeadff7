"""`dinum-validate`: a producer checks a file against its Table Schema before publishing it.

    dinum-validate FILE_OR_URL --schema SCHEMA_PATH_OR_URL [--json]

The same validator as the pipeline's conformance report: every fault, with its code, row,
column and a French message. Exit status: 0 when the file is conformant, 1 when it is not,
2 when the file or the schema cannot be read (the message says why). `--json` prints one
document listing every fault, never truncated.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dinum_pipelines.lib.conformance import SchemaError, SourceError, guess_format, read_schema_file, validate_file
from dinum_pipelines.lib.ingest.http import FetchError, fetch_to_file, make_session
from dinum_pipelines.lib.clean.parsing import ParseError
from dinum_pipelines.lib.declare.registry import CsvOptions, SourceSpec, SpreadsheetOptions

_URL = re.compile(r"^https?://", re.IGNORECASE)
EXIT_VALID, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2
TIMEOUT = (10.0, 120.0)


def _local(location: str, workdir: Path) -> tuple[Path, str]:
    """The file at `location` (a path, or a URL downloaded into `workdir`) and how to name it."""
    if not _URL.match(location):
        path = Path(location).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{location}: no such file")
        return path, location
    with make_session(retries=2, backoff_factor=0.5) as session:
        download = fetch_to_file(session, location, workdir, timeout=TIMEOUT)
    if download.path is None:
        raise FetchError(f"{location}: the server answered {download.status_code} without a body")
    return download.path, location


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dinum-validate",
        description="Vérifie un fichier (CSV, XLSX, ODS, JSON, XML) contre son schéma Table Schema, comme Validata.",
    )
    parser.add_argument("file", help="chemin ou URL du fichier à vérifier")
    parser.add_argument("--schema", required=True, help="chemin ou URL du schéma (schema.json)")
    parser.add_argument("--json", action="store_true", help="un document JSON listant toutes les erreurs")
    parser.add_argument("--format", choices=["csv", "xlsx", "xls", "ods", "json", "geojson", "xml"], help="format du fichier (sinon deviné)")
    parser.add_argument("--encoding", help="encodage d'un CSV (sinon détecté)")
    parser.add_argument("--delimiter", help="séparateur d'un CSV (sinon détecté)")
    parser.add_argument("--sheet", help="feuille d'un classeur (nom ; sinon la première)")
    return parser


def run(arguments: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="dinum-validate-") as workdir:
        schema_path, schema_name = _local(arguments.schema, Path(workdir) / "schema")
        schema = read_schema_file(schema_path, origin=schema_name)
        data_path, data_name = _local(arguments.file, Path(workdir) / "data")
        served = unquote(Path(urlsplit(data_name).path).name) or data_name
        source = SourceSpec(
            url=data_name if _URL.match(data_name) else f"http://localhost/{served}",
            format=arguments.format or guess_format(served, data_path),
            csv=CsvOptions(encoding=arguments.encoding, delimiter=arguments.delimiter, decimal="."),
            spreadsheet=SpreadsheetOptions(sheet=arguments.sheet) if arguments.sheet else SpreadsheetOptions(),
        )
        report = validate_file(data_path, schema, source, data_name)
    if arguments.json:
        json.dump(report.to_dict(), sys.stdout, ensure_ascii=False, indent=1, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(report.to_text())
    return EXIT_VALID if report.valid else EXIT_INVALID


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        return run(arguments)
    except (SchemaError, SourceError, ParseError, FetchError, OSError, ValueError) as exc:
        print(f"dinum-validate: impossible de lire l'entrée : {exc}", file=sys.stderr)
        return EXIT_UNREADABLE


if __name__ == "__main__":
    sys.exit(main())
