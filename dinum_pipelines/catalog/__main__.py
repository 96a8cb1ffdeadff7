"""`dinum-catalog` / `python -m dinum_pipelines.catalog`: serve the catalog and manage accounts.

    dinum-catalog serve --port 8090 --workers 2
    dinum-catalog migrate --database-url postgresql+psycopg://catalog@db/catalog
    dinum-catalog create-org --slug insee --name "Insee"
    dinum-catalog create-user --email jeanne@example.org --name "Jeanne Dupont"
    dinum-catalog create-user --email metrics@example.org --name "Usage Metrics" --sysadmin
    dinum-catalog add-member --org insee --email jeanne@example.org --role editor
    dinum-catalog create-token --email jeanne@example.org --name pipelines --expires-days 90

Every command takes --database-url and --files-dir (default: $DINUM_CATALOG_DATABASE_URL and
$DINUM_CATALOG_FILES_DIR, else ./.dinum/catalog/). `create-token` prints only the token on
stdout, so `TOKEN=$(dinum-catalog create-token --email ...)` works; it cannot be shown again.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence

from sqlalchemy.engine import make_url

from dinum_pipelines.catalog.accounts import ROLES
from dinum_pipelines.catalog.admin import bootstrap_publisher, create_token, split_name
from dinum_pipelines.catalog.errors import CatalogError
from dinum_pipelines.catalog.settings import CatalogSettings
from dinum_pipelines.catalog.store import CatalogStore


def _settings(args: argparse.Namespace) -> CatalogSettings:
    return CatalogSettings.from_env(args.database_url, args.files_dir, getattr(args, "public_url", None))


def _serve(args: argparse.Namespace) -> None:
    from dinum_pipelines.catalog.server import serve  # uvicorn only when serving

    settings = _settings(args)
    if args.simulated_clock:
        settings = dataclasses.replace(settings, simulated_clock=True)
    shown_url = make_url(settings.database_url).render_as_string(hide_password=True)  # logs are not for secrets
    print(f"catalog: {shown_url}, files in {settings.files_dir}", file=sys.stderr)
    serve(settings, host=args.host, port=args.port, workers=args.workers, access_log=args.access_log)


def _migrate(args: argparse.Namespace) -> None:
    from dinum_pipelines.catalog.db import current_revision, open_engine

    settings = _settings(args)
    engine = open_engine(settings.database_url)  # upgrades to the latest revision
    try:
        with engine.connect() as connection:
            revision = current_revision(connection)
    finally:
        engine.dispose()
    print(f"{make_url(settings.database_url).render_as_string(hide_password=True)} is at revision {revision}", file=sys.stderr)
    print(revision)


def _create_user(args: argparse.Namespace) -> None:
    with CatalogStore(_settings(args)) as store:
        user = store.accounts.create_user(args.email, *split_name(args.name))
        if args.sysadmin:
            store.accounts.grant_sysadmin(user["id"])
    print(user["id"])


def _create_org(args: argparse.Namespace) -> None:
    with CatalogStore(_settings(args)) as store:
        org = store.accounts.create_organization(args.slug, args.name, acronym=args.acronym)
    print(org["id"])


def _add_member(args: argparse.Namespace) -> None:
    with CatalogStore(_settings(args)) as store:
        org = store.accounts.require_organization(args.org)
        user = store.accounts.require_user(args.email)
        store.accounts.set_member(org["id"], user["id"], args.role)
    print(f"{args.email} is {args.role} of {org['slug']}", file=sys.stderr)


def _create_token(args: argparse.Namespace) -> None:
    with CatalogStore(_settings(args)) as store:
        token, record = create_token(store, args.email, args.name, expires_days=args.expires_days)
    print(f"token {record['id']} created; it is shown only once:", file=sys.stderr)
    print(token)


def _revoke_token(args: argparse.Namespace) -> None:
    with CatalogStore(_settings(args)) as store:
        store.accounts.revoke_token(args.id)
    print(f"token {args.id} revoked", file=sys.stderr)


def _bootstrap(args: argparse.Namespace) -> None:
    with CatalogStore(_settings(args)) as store:
        publisher = bootstrap_publisher(
            store, org_slug=args.org, org_name=args.org_name, email=args.email, name=args.name,
            role=args.role, expires_days=args.expires_days,
        )
    print(json.dumps({"token": publisher.token, "user_id": publisher.user_id, "organization_id": publisher.organization_id}))


def _at_least_one(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def build_parser() -> argparse.ArgumentParser:
    storage = argparse.ArgumentParser(add_help=False)
    storage.add_argument("--database-url", help="SQLAlchemy URL (default: $DINUM_CATALOG_DATABASE_URL or ./.dinum/catalog/catalog.db)")
    storage.add_argument("--files-dir", help="folder of hosted files (default: $DINUM_CATALOG_FILES_DIR or ./.dinum/catalog/files)")

    parser = argparse.ArgumentParser(prog="dinum-catalog", description="The udata-compatible catalog service.")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Callable[[argparse.Namespace], None], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[storage], help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    serve = command("serve", _serve, "Serve the HTTP API.")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8090)
    serve.add_argument("--public-url", help="base of the absolute URLs handed out (default: from each request's Host)")
    serve.add_argument(
        "--workers", type=_at_least_one, default=1,
        help="server processes (default 1); one per core: a process uses about one core at most",
    )
    serve.add_argument(
        "--access-log", action=argparse.BooleanOptionalAction, default=True,
        help="log every request (default on; off when a proxy in front logs them already)",
    )
    serve.add_argument(
        "--simulated-clock", action="store_true",
        help="load simulation only: sysadmins may date their requests' events (X-Dinum-Simulated-Time)",
    )

    command(
        "migrate", _migrate,
        "Upgrade the database schema to the latest revision (serve does it too on start); prints the revision.",
    )

    user = command("create-user", _create_user, "Create a user; prints its id.")
    user.add_argument("--email", required=True)
    user.add_argument("--name", required=True, help='"First Last"')
    user.add_argument("--sysadmin", action="store_true", help="may export the usage log and push usage metrics")

    org = command("create-org", _create_org, "Create an organization; prints its id.")
    org.add_argument("--slug", required=True)
    org.add_argument("--name", required=True)
    org.add_argument("--acronym")

    member = command("add-member", _add_member, "Make a user a member of an organization (or change the role).")
    member.add_argument("--org", required=True, help="organization slug or id")
    member.add_argument("--email", required=True)
    member.add_argument("--role", choices=ROLES, default="admin")

    token = command("create-token", _create_token, "Create an API token for a user; prints it once.")
    token.add_argument("--email", required=True)
    token.add_argument("--name", default="", help="a label, e.g. the pipeline using it")
    token.add_argument("--expires-days", type=float)

    revoke = command("revoke-token", _revoke_token, "Revoke an API token by id.")
    revoke.add_argument("--id", required=True)

    boot = command("bootstrap", _bootstrap, "Organization + user + membership (get or create) and a new token, as JSON.")
    boot.add_argument("--org", required=True, help="organization slug")
    boot.add_argument("--org-name", required=True)
    boot.add_argument("--email", required=True)
    boot.add_argument("--name", required=True)
    boot.add_argument("--role", choices=ROLES, default="admin")
    boot.add_argument("--expires-days", type=float)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except CatalogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
