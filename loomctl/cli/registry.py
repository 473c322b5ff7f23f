"""The root's commands, each imported and built when first looked up, so `loomctl --help` imports none of them."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import typer

COMMANDS: dict[str, tuple[str, str, str]] = {
    # name: (module, attribute, its help), in the order `loomctl --help` lists them. The help is the group's
    # Typer help or the command's docstring, repeated here so that --help imports none of them
    # (tests/test_cli_startup.py fails when one differs).
    "alerts": (
        "loomctl.cli.monitor",
        "alerts",
        "Active alerts from measured lag and processing (v_consumer_alerts). Example: loomctl alerts --fail-on critical",
    ),
    "recommend": (
        "loomctl.cli.monitor",
        "recommend",
        "Processing recommendations with the numbers behind them. Example: loomctl recommend speech-processor",
    ),
    "config": (
        "loomctl.cli.config",
        "app",
        "Consumer settings per service: validate, change, audit, roll back, export and import.",
    ),
    "cluster": (
        "loomctl.cli.cluster",
        "app",
        "Kafka clusters: register, change and remove them, and check what each can do.",
    ),
    "lag": ("loomctl.cli.lag", "app", "Consumer lag: live from Kafka, sampled into PostgreSQL, judged over a time window."),
    "metrics": (
        "loomctl.cli.monitor",
        "metrics_app",
        "Processing metrics that services report per batch (consumer_processing_metrics).",
    ),
    "partitions": (
        "loomctl.cli.partitions",
        "app",
        "Partition changes: recommendations from measured load, a plan against the cluster, and apply.",
    ),
    "db": ("loomctl.cli.db", "app", "Schema migrations (Alembic), drift checks and offline SQL."),
    "dev": ("loomctl.cli.dev", "app", "A local PostgreSQL and Apache Kafka on loopback, without Docker."),
}
"""The root's commands, each imported and built when first looked up."""


def load(name: str) -> Any:
    """The Click command of the root's command ``name``, built as ``add_typer`` / ``command`` register it."""
    import importlib

    module, attribute, _ = COMMANDS[name]
    target = getattr(importlib.import_module(module), attribute)
    holder = typer.Typer(add_completion=False, rich_markup_mode=None)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name, no_args_is_help=True)
    else:
        holder.command(name)(target)
    holder.callback()(lambda: None)  # always a group, whose command is the one wanted
    return typer.main.get_command(holder).commands[name]  # type: ignore[attr-defined]


def placeholder(name: str) -> Any:
    """A stand-in with the help of ``name``, for `loomctl --help` to list it without loading it."""
    from typer.core import TyperCommand

    return TyperCommand(name, help=COMMANDS[name][2])


class LazyCommands(MutableMapping):
    """The root's commands: each built on first lookup; iterating (a walk over every command) builds them all."""

    def __init__(self, loaded: MutableMapping[str, Any]) -> None:
        self._loaded: dict[str, Any] = dict(loaded)

    def names(self) -> list[str]:
        return [*COMMANDS, *(n for n in self._loaded if n not in COMMANDS)]

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            if name not in COMMANDS:
                raise KeyError(name)
            self._loaded[name] = load(name)
        return self._loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in self._loaded or name in COMMANDS

    def __iter__(self) -> Iterator[str]:
        return iter([n for n in self.names() if self[n] is not None])

    def __len__(self) -> int:
        return len(self.names())

    def __setitem__(self, name: str, command: Any) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]
