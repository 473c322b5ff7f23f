"""`loomctl db`: the schema, owned by Alembic."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from loomctl.cli.options import OutputOption, emit, info, new_app, state
from loomctl.db import views
from loomctl.errors import LoomError
from loomctl.settings import mask_url

app = new_app("Schema migrations (Alembic), drift checks and offline SQL.")


@app.command()
def upgrade(ctx: typer.Context, revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Migrate the database up to REVISION (default head). Example: loomctl db upgrade"""
    from loomctl.db import migrations

    url = state(ctx).settings.require_database_url()
    migrations.upgrade(url, revision)
    at = migrations.current_revisions(url)
    info(f"{mask_url(url)} is at {', '.join(at) or 'base'}")


@app.command()
def downgrade(ctx: typer.Context, revision: Annotated[str, typer.Argument(help="Target revision, or base.")]) -> None:
    """Migrate the database down to REVISION. Example: loomctl db downgrade base"""
    from loomctl.db import migrations

    url = state(ctx).settings.require_database_url()
    migrations.downgrade(url, revision)
    at = migrations.current_revisions(url)
    info(f"{mask_url(url)} is at {', '.join(at) or 'base'}")


@app.command()
def current(ctx: typer.Context, output: OutputOption = None) -> None:
    """Show the revision the database is at. Example: loomctl db current -o json"""
    from loomctl.db import migrations

    st = state(ctx)
    rows = migrations.current(st.settings.require_database_url())
    emit(ctx, rows, output, views.CURRENT)


@app.command()
def history(ctx: typer.Context, output: OutputOption = None) -> None:
    """List every migration, newest first (marks the current one when a database is set). Example: loomctl db history"""
    from loomctl.db import migrations

    st = state(ctx)
    rows = migrations.history(st.settings.checked_database_url())
    emit(ctx, rows, output, views.HISTORY)


@app.command()
def check(ctx: typer.Context, output: OutputOption = None) -> None:
    """Compare the database with the code (tables, views, functions, triggers); exit 1 on drift. Example: loomctl db check"""
    from loomctl.db import migrations

    st = state(ctx)
    report = migrations.check(st.settings.require_database_url())
    emit(ctx, report, output, views.CHECK)
    if not report.clean:
        raise LoomError(f"{len(report.differences)} difference(s) between the database and the code")


@app.command()
def roles(ctx: typer.Context, output: OutputOption = None) -> None:
    """The database roles of loomctl's jobs: what each may do, and the login roles granted it. Example: loomctl db roles"""
    from loomctl.db import roles as job_roles
    from loomctl.db import session_scope

    st = state(ctx)
    with session_scope(st.settings) as connection:
        rows = job_roles.listing(connection)
    emit(ctx, rows, output, views.ROLES)


@app.command()
def grant(
    ctx: typer.Context,
    role: Annotated[str, typer.Argument(help="The job: reader, operator, collector or service.", metavar="ROLE")],
    user: Annotated[str, typer.Argument(help="The login role (database user) to grant it to.", metavar="USER")],
    execute: Annotated[
        bool, typer.Option("--execute", help="Run the statement (as a role that may grant it) instead of printing it.")
    ] = False,
    revoke: Annotated[bool, typer.Option("--revoke", help="Take the role back instead.")] = False,
) -> None:
    """Give a login role a job's database role: prints the GRANT, or runs it with --execute. Example: loomctl db grant reader grafana"""
    from loomctl.db import roles as job_roles
    from loomctl.db import session_scope

    statement = job_roles.revoke_sql(role, user) if revoke else job_roles.grant_sql(role, user)
    if not execute:
        typer.echo(f"{statement};")
        return
    with session_scope(state(ctx).settings) as connection:
        changed = job_roles.grant(connection, role, user, revoke=revoke)
    name = job_roles.role(role).name
    if revoke:
        info(f"revoked {name} from {user}" if changed else f"{user} had not been granted {name}")
    else:
        info(f"granted {name} to {user}" if changed else f"{user} has {name} already")


@app.command()
def sql(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    from_revision: Annotated[Optional[str], typer.Option("--from", help="Start from this revision instead of base.")] = None,
) -> None:
    """Print the upgrade as SQL for a DBA, without touching a database. Example: loomctl db sql > schema.sql"""
    from loomctl.db import migrations

    typer.echo(migrations.offline_sql(revision, from_revision), nl=False)
