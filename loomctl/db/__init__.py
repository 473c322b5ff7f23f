"""The database: here the sessions for the commands (one transaction per command, driver failures turned into
LoomErrors); ``models`` (the tables), ``schema`` (what Alembic compares), ``migrations`` (Alembic as an API),
``entities`` (the views, functions and triggers) and ``sql/`` (their SQL, superseded versions in ``sql/superseded``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from loomctl.errors import BackendUnavailable, BadInput, Conflict, LoomError, PermissionRefused
from loomctl.settings import Settings, mask_url, sqlalchemy_url

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.orm import Session

CONNECT_TIMEOUT_S = 5
"""Every command's bound on reaching PostgreSQL, also one that accepts TCP but never answers."""
APPLICATION_NAME = "loomctl"


def make_engine(database_url: str) -> "Engine":
    """The one way loomctl (the Alembic environment too) opens SQLAlchemy connections."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    # One command, one connection: a pool would only keep an idle connection open.
    return create_engine(
        sqlalchemy_url(database_url),
        poolclass=NullPool,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": APPLICATION_NAME},
    )


def open_connection(
    url: str, *, application_name: str = APPLICATION_NAME, connect_timeout: float = CONNECT_TIMEOUT_S, autocommit: bool = False
) -> "psycopg.Connection[Any]":
    """The one way loomctl opens plain psycopg connections (``url`` checked), without JIT compilation.

    loomctl's reads return at most one row per partition, from the status copy or a day's index, in
    milliseconds; but the planner costs them by the history they might compute from, which crosses
    jit_above_cost, and compiling then takes longer than the query (129 ms of JIT for a 6 ms read of one
    group's statuses at 75,000 partitions). An ``options`` the URL already sets is kept.
    """
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from loomctl.settings import libpq_url

    conninfo = libpq_url(url)
    options = " ".join(o for o in (str(conninfo_to_dict(conninfo).get("options") or ""), "-c jit=off") if o)
    return psycopg.connect(
        conninfo, autocommit=autocommit, connect_timeout=int(connect_timeout), application_name=application_name, options=options
    )


NOT_MIGRATED_SQLSTATES = ("42P01", "42883", "42703")
"""Undefined table, function or column: a database at an older revision than this loomctl (or none)."""


def unreachable(url: str | None, exc: BaseException, *, lost: bool = False) -> BackendUnavailable:
    """The one message for a PostgreSQL that does not answer (``lost``: it went away mid-command)."""
    where = mask_url(url) if url else "the database"
    return BackendUnavailable(f"{'lost' if lost else 'cannot reach'} PostgreSQL at {where}: {first_line(exc)}")


def not_migrated(url: str | None) -> BadInput:
    """The one message for a database without loomctl's tables or functions."""
    where = mask_url(url) if url else "the database"
    return BadInput(f"the database at {where} is not migrated: run `loomctl db upgrade`")


# What PostgreSQL's refusals mean for the user, by SQLSTATE (class or code): the error class (its exit code) and the
# line to show. Never the statement or its parameters: only the server's own first line, which holds no row values.
_REFUSALS: dict[str, tuple[type[LoomError], str]] = {
    "23505": (Conflict, "{line}{detail}"),  # unique_violation, e.g. a consumer group id already used
    "23": (BadInput, "{line}{detail}"),  # integrity: a CHECK or foreign key the input breaks
    "22": (BadInput, "{line}"),  # data exception: a value the column cannot hold
    "25006": (BackendUnavailable, "PostgreSQL at {where} takes no writes (a read-only transaction or replica): {line}"),
    "42501": (PermissionRefused, "PostgreSQL at {where} refused it to this role: {line}"),
    "40001": (Conflict, "another transaction changed the same rows: {line}; run the command again"),
    "40P01": (Conflict, "another transaction changed the same rows: {line}; run the command again"),
    "57014": (BackendUnavailable, "PostgreSQL at {where} cancelled the statement: {line}"),
    "53": (BackendUnavailable, "PostgreSQL at {where} is out of resources: {line}"),
    "57P": (BackendUnavailable, "lost PostgreSQL at {where}: {line}"),
    "08": (BackendUnavailable, "lost PostgreSQL at {where}: {line}"),
}


def refused(url: str | None, exc: BaseException, *, lost: bool = False) -> LoomError:
    """The one line (and exit code) for anything the driver raises: unreachable, not migrated, or a refusal by
    SQLSTATE (:data:`_REFUSALS`); anything else is still one line, exit 1."""
    from sqlalchemy.exc import OperationalError

    orig = getattr(exc, "orig", None) or exc
    sqlstate = getattr(orig, "sqlstate", None) or ""
    if sqlstate in NOT_MIGRATED_SQLSTATES:
        return not_migrated(url)
    for key in (sqlstate, sqlstate[:3], sqlstate[:2]):
        if key and key in _REFUSALS:
            kind, text = _REFUSALS[key]
            where = mask_url(url) if url else "the database"
            return kind(text.format(line=first_line(exc), detail=_detail(exc), where=where))
    if isinstance(exc, OperationalError) or type(orig).__name__ == "OperationalError":  # psycopg's, without importing it
        return unreachable(url, exc, lost=lost)
    return LoomError(f"PostgreSQL refused it: {first_line(exc)}")


def statement_failure(exc: BaseException, command: str) -> LoomError:
    """A failed statement of a long-running loop (the collector's), as one line: a refusal names the role
    ``command`` needs (the loop reports it and carries on, so no handler adds it later)."""
    line = f"PostgreSQL: {first_line(exc)}"
    if getattr(getattr(exc, "orig", None) or exc, "sqlstate", None) == "42501":
        from loomctl.db.roles import needed_by

        return PermissionRefused(f"{line}; {needed_by(command)}", command, named=True)
    return LoomError(line)


def first_line(exc: BaseException) -> str:
    """The first line of a driver error's message (SQLAlchemy's wrapped one, or the error itself)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


@contextmanager
def session_scope(settings: Settings) -> Iterator["Session"]:
    """A Session in one transaction: committed when the block ends, rolled back when it raises."""
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.orm import Session

    url = settings.require_database_url()
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
    except DBAPIError as exc:
        raise refused(url, exc) from None
    finally:
        engine.dispose()


def _detail(exc: BaseException) -> str:
    diag = getattr(getattr(exc, "orig", None), "diag", None)
    detail = getattr(diag, "message_detail", None)
    return f" ({detail})" if detail else ""


def set_audit_context(connection: "Session | Connection", actor: str, reason: str | None) -> None:
    """What the audit trigger records as actor and reason for this transaction's changes."""
    from sqlalchemy import text

    connection.execute(
        text("SELECT set_config('loomctl.actor', :actor, true), set_config('loomctl.reason', :reason, true)"),
        {"actor": actor, "reason": reason or ""},
    )


@contextmanager
def connect(settings: Settings, *, autocommit: bool = False) -> Iterator["psycopg.Connection[Any]"]:
    """A plain psycopg connection (COPY, arrays) in one transaction, with the same error mapping as
    :func:`session_scope`: committed when the block ends, rolled back when it raises."""
    import psycopg

    url = settings.require_database_url()
    try:
        conn = open_connection(url, autocommit=autocommit)
    except psycopg.OperationalError as exc:
        raise unreachable(url, exc) from None
    try:
        with conn:  # commits on success, rolls back on an exception, then closes
            yield conn
    except psycopg.Error as exc:
        raise refused(url, exc, lost=True) from None


def mappings(conn: Any, sql: str, params: Any) -> list[Any]:
    """Rows as mappings from a psycopg connection or a SQLAlchemy Session or Connection, so that
    the psycopg-only paths (lag, the collector) read through the same code without importing SQLAlchemy."""
    if type(conn).__module__.startswith("psycopg"):
        from psycopg.rows import dict_row

        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(sql, params).fetchall()
    if hasattr(conn, "exec_driver_sql"):
        return list(conn.exec_driver_sql(sql, dict(params)).mappings())
    return list(conn.connection().exec_driver_sql(sql, dict(params)).mappings())


def close_quietly(conn: "psycopg.Connection[Any] | None") -> None:
    """Close a connection that may be broken already: best effort, never raising."""
    if conn is not None:
        try:
            conn.close()
        except Exception:  # already broken; closing is best effort
            pass
