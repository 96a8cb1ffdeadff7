"""`dinum-pipelines add URL`: a dataset declared from its file in one command.

    dinum-pipelines add URL_OR_PATH [--org SLUG] [--slug SLUG] [--out FOLDER] [--url URL]
                                    [--schemas FOLDER ...] [--update [--write]]

Downloads the file (or reads a local path), profiles it as the pipeline reads it (see
lib/declare/scaffold.py) and writes `<out>/<slug>/defs.yaml`, the dataset's Dagster component file
(`dg check yaml` and `dg check defs` check it), with placeholders for the title and description,
which the registry refuses until a human writes them. It prints what it inferred and why, one
line per column. `--update` re-profiles an existing dataset's file and prints the proposed
changes as a unified diff; nothing is written unless `--write` is given.

Exit status: 0 when the YAML was written (or the diff printed), 1 when the pipeline's reader
refused the file (the YAML then declares the source only), 2 on bad usage or an unreachable file.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from dinum_pipelines.cli.validate import _local
from dinum_pipelines.lib.declare import scaffold
from dinum_pipelines.lib.ingest.http import FetchError
from dinum_pipelines.lib.declare.registry import (
    COMPONENT_FILE_NAME,
    DEFAULT_SOURCES_DIR,
    SLUG_PATTERN,
    component_file_text,
    read_declaration,
)

EXIT_OK, EXIT_UNREADABLE, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dinum-pipelines", description="Outils des pipelines DINUM.")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="déclare un jeu de données à partir de son fichier (URL ou chemin)")
    add.add_argument("location", metavar="URL_OR_PATH", help="URL du fichier (ou chemin local)")
    add.add_argument("--org", help="slug de l'organisation productrice dans le catalogue")
    add.add_argument("--org-name", help="nom de l'organisation (par défaut : tiré du slug)")
    add.add_argument("--slug", help="slug du jeu de données (par défaut : tiré du nom du fichier)")
    add.add_argument("--out", type=Path, default=DEFAULT_SOURCES_DIR, help="dossier du registre (par défaut : dinum_pipelines/defs/datasets/)")
    add.add_argument("--url", help="URL que le pipeline téléchargera (par défaut : URL_OR_PATH ; obligatoire en pratique pour un chemin local)")
    add.add_argument("--schemas", type=Path, action="append", default=[], help="dossier de schémas Table Schema connus (répétable)")
    add.add_argument("--update", action="store_true", help="re-profile un jeu existant et affiche le diff proposé")
    add.add_argument("--write", action="store_true", help="avec --update : écrit la proposition")
    return parser


def run(arguments: argparse.Namespace, out=sys.stdout) -> int:
    url = arguments.url or (arguments.location if _is_url(arguments.location) else None)
    source_url = url or f"{scaffold.PLACEHOLDER} : URL du fichier (https://...)"
    slug = arguments.slug or scaffold.slug_for(url or Path(arguments.location).name)
    if not re.match(SLUG_PATTERN, slug):
        print(f"--slug: {slug!r} is not a registry slug ({SLUG_PATTERN})", file=sys.stderr)
        return EXIT_USAGE
    target = arguments.out / slug / COMPONENT_FILE_NAME
    if target.exists() != arguments.update:
        print(f"{target}: {'already exists (use --update to re-profile it)' if target.exists() else 'no such dataset to --update'}", file=sys.stderr)
        return EXIT_USAGE
    schemas = scaffold.known_schemas(arguments.schemas)
    with tempfile.TemporaryDirectory() as workdir:
        try:
            path, _name = _local(arguments.location, Path(workdir))
        except (FetchError, OSError) as exc:
            print(f"{arguments.location}: cannot get the file: {exc}", file=sys.stderr)
            return EXIT_USAGE
        proposal = scaffold.propose(path, source_url, slug=slug, org=arguments.org, org_name=arguments.org_name, schemas=schemas)
    for line in proposal.lines:
        print(line, file=out)
    if proposal.dry_run is not None:
        verdict = "would publish" if not proposal.dry_run else "would BLOCK: " + " | ".join(proposal.dry_run[:5])
        print(f"dry run of the proposal on this file: {verdict}", file=out)
    if arguments.update:
        current = target.read_text(encoding="utf-8")
        proposal.mapping = scaffold.updated_mapping(read_declaration(target), proposal)
        proposed = component_file_text(proposal.yaml_text(), target.parent)
        print(scaffold.unified_diff(current, proposed, f"{slug}/{target.name}") or "no change proposed", file=out)
        if arguments.write:
            target.write_text(proposed, encoding="utf-8")
            print(f"written: {target}", file=out)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(component_file_text(proposal.yaml_text(), target.parent), encoding="utf-8")
        print(f"written: {target} (write its title and description before it loads)", file=out)
    return EXIT_UNREADABLE if proposal.unreadable else EXIT_OK


def _is_url(location: str) -> bool:
    return location.lower().startswith(("http://", "https://"))


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
