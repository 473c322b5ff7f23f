"""How the schema's results read as tables, and what JSON and YAML write of them."""

from __future__ import annotations

from loomctl.render import view

CURRENT = view("current revision", ("revision", "description", "is_head"))
HISTORY = view(columns=("revision", "down_revision", "description", "is_head", "is_current"))
CHECK = view(
    document=lambda report: {"clean": report.clean, **vars(report)}, rows=lambda report: {"clean": report.clean, **vars(report)}
)
"""A :class:`~loomctl.db.migrations.CheckReport`."""
ROLES = view("roles of loomctl's jobs", ("role", "job", "may", "exists", "members"))
