"""The released migrations' name for :mod:`loomctl.db.entities` (they import ``loomctl.sql_entities.entity``, and a
released migration is never edited)."""

from loomctl.db.entities import CURRENT, current_entities, entity, sql_text

__all__ = ["CURRENT", "current_entities", "entity", "sql_text"]
