"""Alembic as an API: what `loomctl db`, `loomctl dev up` and the tests call.

The Alembic configuration is built in code, so an installed loomctl migrates without the
checkout (the scripts ship in the wheel as `loomctl/_alembic`).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loomctl import db
from loomctl.errors import BadInput, NotFound
from loomctl.settings import sqlalchemy_url

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def script_location() -> Path:
    for candidate in (_PACKAGE_DIR / "_alembic", _PACKAGE_DIR.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise NotFound("the Alembic migration scripts are missing from this installation of loomctl")


def alembic_config(database_url: str | None = None, *, stdout: Any = None) -> Any:
    from alembic.config import Config

    config = Config(stdout=stdout) if stdout is not None else Config()
    config.set_main_option("script_location", str(script_location()))
    config.attributes["configure_logging"] = False
    if database_url:
        config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return config


@contextmanager
def _backend_errors(database_url: str | None) -> Iterator[None]:
    """Turn driver and Alembic failures into LoomErrors with one readable line."""
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError, OperationalError

    try:
        yield
    except OperationalError as exc:
        raise db.unreachable(database_url, exc) from None
    except DBAPIError as exc:
        raise BadInput(f"migration failed: {db.first_line(exc)}") from None
    except CommandError as exc:
        raise BadInput(str(exc)) from None
    except (AssertionError, ValueError) as exc:  # a relative revision Alembic cannot walk ("-99" past base)
        raise BadInput(f"cannot reach that revision from the database's ({type(exc).__name__}: {exc})") from None


def _revision(text: str, *, relative: bool = True) -> str:
    """A target revision as typed, refused in one line (exit 2) unless Alembic can resolve it: head, heads, base, an
    id (or its start), ``id@branch``, a range ``a:b`` for offline SQL, or a relative one (``-1``, ``head-2``, ``+1``).
    Alembic answers the odd ones ('', '@', '1:2:3', 'head-99') with AssertionError or ValueError, not its own error."""
    from alembic.util import CommandError

    from loomctl.validation import shown

    revision = text.strip()
    if not revision:
        raise BadInput("a revision is needed: head, base, an id from `loomctl db history`, or a relative one like -1")
    script = _script()
    parts = revision.split(":")
    try:
        if len(parts) > 2 or not all(parts):
            raise ValueError(revision)
        for part in parts:
            if relative and (part.startswith(("+", "-")) or part.rsplit("-", 1)[-1].isdigit() or "+" in part):
                base = part.lstrip("+-").partition("+")[0].rpartition("-")[0] or "heads"
                script.get_revisions(base)  # a relative step is checked against the database when it runs
            else:
                script.get_revisions(part)
    except (CommandError, AssertionError, ValueError, KeyError, TypeError) as exc:
        hint = str(exc).splitlines()[0] if isinstance(exc, CommandError) else "not a revision"
        raise BadInput(f"{shown(text)}: {hint} (see `loomctl db history`)") from None
    return revision


@dataclass(frozen=True)
class Revision:
    revision: str
    down_revision: str | None
    description: str
    is_head: bool
    is_current: bool = False


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate up to ``revision`` under the migration advisory lock (see alembic/env.py)."""
    from alembic import command

    target = _revision(revision)
    with _backend_errors(database_url):
        command.upgrade(alembic_config(database_url), target)


def downgrade(database_url: str, revision: str) -> None:
    from alembic import command

    target = _revision(revision)
    with _backend_errors(database_url):
        command.downgrade(alembic_config(database_url), target)


def _script() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def current_revisions(database_url: str) -> list[str]:
    from alembic.runtime.migration import MigrationContext

    with _backend_errors(database_url):
        engine = db.make_engine(database_url)
        try:
            with engine.connect() as connection:
                return sorted(MigrationContext.configure(connection).get_current_heads())
        finally:
            engine.dispose()


def current(database_url: str) -> list[Revision]:
    """The revisions the database is at (empty when it was never migrated)."""
    return [r for r in history(database_url) if r.is_current]


def history(database_url: str | None = None) -> list[Revision]:
    """Every revision, newest first; with a URL, the ones the database is at are marked."""
    at = set(current_revisions(database_url)) if database_url else set()
    script = _script()
    heads = set(script.get_heads())
    return [
        Revision(
            revision=rev.revision,
            down_revision=rev.down_revision if isinstance(rev.down_revision, (str, type(None))) else ",".join(rev.down_revision),
            description=(rev.doc or "").splitlines()[0],
            is_head=rev.revision in heads,
            is_current=rev.revision in at,
        )
        for rev in script.walk_revisions()
    ]


def offline_sql(revision: str = "head", from_revision: str | None = None) -> str:
    """The SQL of an upgrade, for a DBA to review or run (`alembic upgrade --sql`)."""
    from alembic import command

    buffer = io.StringIO()
    config = alembic_config("postgresql+psycopg://offline/loom", stdout=buffer)
    config.output_buffer = buffer
    target = _revision(f"{from_revision}:{revision}" if from_revision else revision, relative=False)
    with _backend_errors(None):
        command.upgrade(config, target, sql=True)
    return buffer.getvalue()


@dataclass
class DriftReport:
    database_revisions: list[str]
    head_revisions: list[str]
    differences: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.differences


def _describe_op(op: Any) -> Iterator[str]:
    from alembic_utils.reversible_op import CreateOp, DropOp, ReversibleOp

    if hasattr(op, "ops"):  # ModifyTableOps and friends
        for sub in op.ops:
            yield from _describe_op(sub)
        return
    if isinstance(op, ReversibleOp):
        target = op.target
        kind = type(target).__name__.removeprefix("PG").lower()
        name = f"{target.schema}.{target.signature}"
        if isinstance(op, CreateOp):
            yield f"{kind} {name} is missing from the database"
        elif isinstance(op, DropOp):
            yield f"{kind} {name} is in the database but not declared by the code"
        else:
            yield f"{kind} {name} in the database differs from the code"
        return
    diff = op.to_diff_tuple()
    if isinstance(diff, list):
        for item in diff:
            yield " ".join(_name_of(part) for part in item)
    else:
        yield " ".join(_name_of(part) for part in diff)


def _name_of(part: Any) -> str:
    name = getattr(part, "name", None)
    if name is not None:
        table = getattr(getattr(part, "table", None), "name", None)
        return f"{table}.{name}" if table and table != name else str(name)
    return str(part)


def _check_constraint_drift(connection: Any) -> list[str]:
    """CHECK constraints of pipeline_consumer_configs against the field table (autogenerate skips them).

    Both sides are normalised by PostgreSQL itself: the expected constraints are added to a
    scratch copy of the table inside a savepoint that is rolled back.
    """
    from sqlalchemy import text

    from loomctl.consumer_config import check_constraints

    query = text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = CAST(:table AS regclass) AND contype = 'c' AND conname LIKE :prefix"
    )
    actual = dict(
        connection.execute(query, {"table": "public.pipeline_consumer_configs", "prefix": "ck_pipeline_consumer_configs_%"}).all()
    )
    savepoint = connection.begin_nested()
    try:
        connection.execute(text("CREATE TEMP TABLE loom_expected_checks (LIKE public.pipeline_consumer_configs)"))
        for name, condition in check_constraints().items():
            connection.execute(
                text(f'ALTER TABLE loom_expected_checks ADD CONSTRAINT "ck_pipeline_consumer_configs_{name}" CHECK ({condition})')
            )
        expected = dict(
            connection.execute(query, {"table": "loom_expected_checks", "prefix": "ck_pipeline_consumer_configs_%"}).all()
        )
    finally:
        savepoint.rollback()
    problems = []
    for name, definition in expected.items():
        if name not in actual:
            problems.append(f"check constraint {name} is missing from the database")
        elif actual[name] != definition:
            problems.append(f"check constraint {name} is {actual[name]} in the database, {definition} in the code")
    # constraints that are not derived from the field table are compared by the model check
    return problems


def check(database_url: str) -> DriftReport:
    """Compare the database with the code: revision, tables (models), views, functions, triggers, CHECKs."""
    from alembic.autogenerate import produce_migrations
    from alembic.runtime.migration import MigrationContext
    from alembic_utils.replaceable_entity import register_entities

    from loomctl.db import roles
    from loomctl.db.entities import current_entities
    from loomctl.db.models import Base
    from loomctl.db.schema import include_object

    heads = sorted(_script().get_heads())
    with _backend_errors(database_url):
        engine = db.make_engine(database_url)
        try:
            with engine.connect() as connection:
                context = MigrationContext.configure(
                    connection,
                    opts={"target_metadata": Base.metadata, "include_object": include_object, "include_schemas": False},
                )
                at = sorted(context.get_current_heads())
                report = DriftReport(database_revisions=at, head_revisions=heads)
                if at != heads:
                    report.differences.append(
                        f"database is at {', '.join(at) or 'no revision'}, the code at {', '.join(heads)}: "
                        "run `loomctl db upgrade`"
                    )
                    return report
                register_entities(current_entities())
                upgrade_ops = produce_migrations(context, Base.metadata).upgrade_ops
                for op in upgrade_ops.ops if upgrade_ops is not None else []:
                    report.differences.extend(_describe_op(op))
                report.differences.extend(_check_constraint_drift(connection))
                report.differences.extend(roles.privilege_drift(connection))
                connection.rollback()
        finally:
            engine.dispose()
    return report
