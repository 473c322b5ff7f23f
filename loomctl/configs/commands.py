"""The config commands' decisions, whole: a change with the broker's word on it, a push, an import. The CLI only
asks the person (through the ``confirm`` callbacks) and renders what these return."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loomctl.configs.broker import BrokerCheck, PushItem, PushReport
    from loomctl.configs.files import ImportPlan
    from loomctl.configs.formats import ServiceSpec
    from loomctl.configs.store import ChangeResult, ConsumerConfig
    from loomctl.settings import Settings


def cluster_settings(session: Any, name: str, base: Settings) -> Settings:
    """The client settings of a registered cluster (the flags' and the environment's for the default one)."""
    from loomctl.clusters import get_cluster, settings_for

    return settings_for(get_cluster(session, name), base)


def by_cluster(configs: Sequence[ConsumerConfig]) -> dict[str, list[ConsumerConfig]]:
    """The configs per cluster, clusters by name."""
    found: dict[str, list[ConsumerConfig]] = {}
    for config in configs:
        found.setdefault(config.cluster_name, []).append(config)
    return dict(sorted(found.items()))


def drift_by_cluster(
    configs: Sequence[ConsumerConfig],
    admin_of: Callable[[str], Any],
    *,
    timeout: float,
    wire_of: Callable[[str], Any] | None = None,
) -> Any:
    """`config drift`: each service compared with its own cluster (:func:`loomctl.configs.broker.drift`)."""
    from loomctl.configs.broker import DriftReport, drift

    return DriftReport(
        [
            d
            for name, found in by_cluster(configs).items()
            for d in drift(found, admin_of(name), timeout=timeout, wire=None if wire_of is None else wire_of(name)).services
        ]
    )


def wires(session: Any, base: Settings, stack: Any, *, timeout: float) -> Callable[[str], Any]:
    """The group-types client (:func:`loomctl.kafka.protocol.client`) of each registered cluster by name, opened once,
    when first asked for, and closed with ``stack`` (a contextlib.ExitStack)."""
    from loomctl.kafka import protocol

    kept: dict[str, Any] = {}

    def wire_of(name: str) -> Any:
        if name not in kept:
            found = protocol.client_or_reason(stack, cluster_settings(session, name, base), timeout=timeout)
            kept[name] = None if isinstance(found, str) else found  # without it, member types are unknown
        return kept[name]

    return wire_of


def admins(session: Any, base: Settings, *, timeout: float) -> Callable[[str], Any]:
    """The AdminClient of each registered cluster by name, looked up and built once, when first asked for."""
    from loomctl import kafka

    kept: dict[str, Any] = {}

    def admin_of(name: str) -> Any:
        if name not in kept:
            kept[name] = kafka.admin_client(cluster_settings(session, name, base), timeout=timeout)
        return kept[name]

    return admin_of


def kafka_properties_of(session: Any, base: Settings) -> Callable[[str], dict[str, str]]:
    """The client properties of each registered cluster by name (its brokers, its properties file), read when asked."""

    def properties_of(name: str) -> dict[str, str]:
        return cluster_settings(session, name, base).kafka_properties()

    return properties_of


def chosen_configs(session: Any, services: Sequence[str]) -> list[ConsumerConfig]:
    """The configs of ``services`` (NotFound naming any without one), or every config when none is named."""
    from loomctl.configs.store import read_configs, require_configs

    return require_configs(session, services) if services else read_configs(session)


def broker_checks(session: Any, results: Sequence[ChangeResult], settings: Settings) -> list[BrokerCheck]:
    """What the broker says of each change, asked inside the transaction: a consumer-protocol service outside the
    broker's bounds raises BadInput, so nothing is written. A dry run is checked with the settings it would leave."""
    from loomctl.configs.broker import check_changes
    from loomctl.configs.store import SETTING_NAMES, Action, find_config
    from loomctl.consumer_config import DEFAULTS
    from loomctl.errors import BadInput

    pairs = []
    homes = []
    for result in results:
        after = find_config(session, result.service_name)
        values: dict[str, Any] | None = dict(after.settings) if after else None
        if result.action == Action.DELETE:
            values = None
        elif result.dry_run:  # nothing was written: the settings it would leave
            values = (values or dict(DEFAULTS)) | {c.field: c.new for c in result.changes if c.field in SETTING_NAMES}
        pairs.append((values, result))
        moved = next((c.new for c in result.changes if c.field == "cluster_name"), None)
        homes.append(moved or (after.cluster_name if after else "default"))
    checks: list[BrokerCheck] = [None] * len(pairs)  # type: ignore[list-item]  # each filled below
    for home in dict.fromkeys(homes):  # each service asked of its own cluster's brokers
        at = [i for i, h in enumerate(homes) if h == home]
        for i, check in zip(at, check_changes([pairs[i] for i in at], cluster_settings(session, home, settings)), strict=True):
            checks[i] = check
    for check, result in zip(checks, results, strict=True):
        if check.error:
            raise BadInput(f"{result.service_name}: {check.error}")
    return checks


@dataclass(frozen=True)
class Checked:
    """A change and the broker's word on it; ``push_next``: the change is to reach the broker now (`set --push`)."""

    result: ChangeResult
    check: BrokerCheck
    push_next: bool = False


def set_checked(session: Any, service: str, values: dict[str, Any], settings: Settings, *, push: bool, **options: Any) -> Checked:
    """`config set`: the change (or its dry run) with :func:`loomctl.configs.store.set_config`'s ``options``, checked
    with the broker; with ``push``, a written change that needs a push is marked to be pushed (and its note, that
    one is needed, dropped)."""
    from dataclasses import replace

    from loomctl.configs.store import set_config

    if push:
        settings.kafka_properties()  # no cluster to push to: refused before anything is written
    result = set_config(session, service, values, **options)
    check = broker_checks(session, [result], settings)[0]
    if push and check.note and not result.dry_run:
        return Checked(result, replace(check, note=None), push_next=True)
    return Checked(result, check)


def push_configs(
    session: Any,
    services: Sequence[str],
    admin_of: Callable[[str], Any],
    *,
    dry_run: bool,
    confirm: Callable[[list[PushItem], int], None] | None,
    actor: str,
    reason: str | None,
    timeout: float,
) -> PushReport:
    """`config push`: plan against the broker, ``confirm(plan, count)`` when something would be set (None: do not
    ask), push in one request, read back, and record each pushed service in its history."""
    from loomctl.configs.broker import PushAction, PushReport, carry_out_push, plan_push
    from loomctl.kafka.clients import DEFAULT_TIMEOUT_S

    found = by_cluster(chosen_configs(session, services))
    # the plan only reads: a cluster that does not answer is given up on as by every read, not after the change's time
    plans = {name: plan_push(configs, admin_of(name), timeout=min(timeout, DEFAULT_TIMEOUT_S)) for name, configs in found.items()}
    whole = [item for plan in plans.values() for item in plan]
    pending = sum(i.action == PushAction.WOULD_SET for i in whole)
    if pending and not dry_run and confirm is not None:
        confirm(whole, pending)
    items: list[PushItem] = []
    for name, configs in found.items():  # each cluster's groups pushed to that cluster
        done = carry_out_push(
            session, configs, plans[name], admin_of(name), dry_run=dry_run, actor=actor, reason=reason, timeout=timeout
        )
        items += done.items
    return PushReport(items, dry_run)


@dataclass(frozen=True)
class ImportReport:
    plan: ImportPlan
    results: list[ChangeResult] = field(default_factory=list)
    checks: list[BrokerCheck] = field(default_factory=list)

    @property
    def applied(self) -> bool:
        return bool(self.results)

    def notes(self) -> list[str]:
        """The broker's warnings and the next steps, one line each."""
        lines = [(c.warning and f"warning: {c.warning}", c.note) for c in self.checks]
        return [line for pair in lines for line in pair if line]


def import_specs(
    session: Any,
    items: Sequence[ServiceSpec],
    settings: Settings,
    *,
    prune: bool,
    dry_run: bool,
    show: Callable[[ImportPlan], None],
    confirm: Callable[[ImportPlan], None] | None,
    actor: str,
    reason: str | None,
) -> ImportReport:
    """`config import`: the plan (``show(plan)``), then, unless a dry run or nothing changes, ``confirm(plan)``
    (None: do not ask) and the changes in this one transaction, checked with the broker."""
    from loomctl.configs.files import apply_import, plan_import

    plan = plan_import(session, items, prune=prune)
    show(plan)
    if dry_run or not plan.has_changes:
        return ImportReport(plan)
    if confirm is not None:
        confirm(plan)
    results = apply_import(session, plan, actor=actor, reason=reason)
    return ImportReport(plan, results, broker_checks(session, results, settings))
