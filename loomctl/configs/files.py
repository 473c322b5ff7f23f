"""Configs as files: export in one of the formats of :data:`~loomctl.configs.formats.FORMATS`,
import a YAML or JSON file.

A file is a schema: its services are checked as a whole before anything is written, and an
import is one plan (create, update, leave, delete) carried out in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loomctl.configs.formats import FORMAT_NAMES, FORMATS, ServiceSpec
from loomctl.errors import BadInput

if TYPE_CHECKING:
    from loomctl.configs.store import ChangeResult, Executor, FieldChange


def specs(session: "Executor", services: Sequence[str] = ()) -> list[ServiceSpec]:
    from loomctl.configs.store import list_configs

    return [
        ServiceSpec(
            c.service_name, c.consumer_group_id, c.profile, c.description, dict(c.settings), c.lag_slo_seconds, c.cluster_name
        )
        for c in list_configs(session, services=services)
    ]


def format_export(items: Sequence[ServiceSpec], fmt: str) -> str:
    """The services as text in ``fmt``: yaml and json re-import; the others are what clients read."""
    exporter = FORMATS.get(fmt)
    if exporter is None:
        raise BadInput(f"unknown export format {fmt!r}: one of {', '.join(FORMAT_NAMES)}")
    return exporter.render(items)


def kafkajs_document(spec: ServiceSpec) -> dict[str, Any]:
    from loomctl.configs.store import client_options

    return client_options("kafkajs", spec.consumer_group_id, spec.settings)


IMPORT_PLAN_LABELS = {"create": "create", "update": "change", "unchanged": "unchanged", "delete": "delete"}
"""How an import plan names each :class:`~loomctl.configs.store.Action` in its output: its released
JSON says ``change`` where a change result says ``update``; the plan keeps that word for the
scripts that read it, and the code uses the one vocabulary."""


@dataclass(frozen=True)
class PlanItem:
    service_name: str
    action: str
    """The plan's label of the action (see :data:`IMPORT_PLAN_LABELS`): create, change, unchanged, delete."""
    changes: list["FieldChange"]
    expected_version: int | None = None
    values: dict[str, Any] | None = None


@dataclass(frozen=True)
class ImportPlan:
    items: list[PlanItem]
    prune: bool

    def counts(self) -> dict[str, int]:
        counts = {label: 0 for label in IMPORT_PLAN_LABELS.values()}
        for item in self.items:
            counts[item.action] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        return any(item.action != IMPORT_PLAN_LABELS["unchanged"] for item in self.items)


SERVICE_KEYS = ("service_name", "consumer_group_id", "profile", "description", "lag_slo_seconds", "cluster_name", "settings")
ROOT_KEYS = ("services",)
MAX_FILE_BYTES = 16 * 1024 * 1024


def _unknown_key(where: str, key: Any, allowed: Sequence[str]) -> BadInput:
    import difflib

    from loomctl.validation import shown

    close = difflib.get_close_matches(str(key), list(allowed), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return BadInput(f"{where}: unknown key {shown(key)!r}{hint}; keys: {', '.join(allowed)}")


def _optional_text(where: str, doc: Mapping[str, Any], key: str) -> str | None:
    from loomctl.validation import shown

    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise BadInput(f"{where}: {key} must be text, got {type(value).__name__} {shown(value)}")
    return value


def _spec_from_document(doc: Any, where: str) -> ServiceSpec:
    from loomctl import validation
    from loomctl.clusters.store import check_cluster_name
    from loomctl.configs.store import OBJECTIVE, check_lag_slo_seconds
    from loomctl.consumer_config import PROFILES

    if not isinstance(doc, Mapping):
        raise BadInput(f"{where}: expected a mapping with service_name and settings, got {type(doc).__name__}")
    extra = [k for k in doc if k not in SERVICE_KEYS]
    if extra:
        raise _unknown_key(where, extra[0], SERVICE_KEYS)
    name = doc.get("service_name")
    if not isinstance(name, str):
        raise BadInput(
            f"{where}: service_name is missing"
            if name is None
            else f"{where}: service_name must be text, got {type(name).__name__} {validation.shown(name)}"
        )
    where = f"{where} ({validation.shown(name)})"
    try:
        validation.check_service_name(name)
        profile = _optional_text(where, doc, "profile")
        group = _optional_text(where, doc, "consumer_group_id") or name
        description = _optional_text(where, doc, "description")
        cluster = _optional_text(where, doc, "cluster_name")
        if cluster is not None:
            check_cluster_name(cluster)
        base: dict[str, Any] = {}
        if profile is not None:
            validation.check_profile(profile)
            base = dict(PROFILES[profile].settings)
        objective = doc.get(OBJECTIVE)
        if isinstance(objective, str):  # a file says a number as a number: "300" is a mistake, not seconds
            raise BadInput(f"{OBJECTIVE} must be whole seconds, got text {validation.shown(objective)!r}")
        objective = check_lag_slo_seconds(objective)
        raw_settings = doc.get("settings") or {}
        if not isinstance(raw_settings, Mapping):
            raise BadInput(f"settings must be a mapping of setting: value, got {type(raw_settings).__name__}")
        if OBJECTIVE in raw_settings:
            raise BadInput(f"settings: {OBJECTIVE} is a service attribute, not a client setting: put it beside description")
        settings = validation.check_settings(base | validation.coerce_settings(raw_settings))
        validation.check_group_id(group)
        if description is not None:
            validation.check_description(description)
    except BadInput as exc:
        message = str(exc)
        raise BadInput(message if message.startswith(where) else f"{where}: {message}") from None
    return ServiceSpec(name, group, profile, description, settings, objective, cluster)


def _load_yaml(text: str, source: str) -> Any:
    """YAML (JSON is YAML too) with the strictness of a schema: a key twice in one mapping is an error."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # a list or mapping as a key: the schema has none
                    raise BadInput(f"{source}: line {key_node.start_mark.line + 1}: a key must be text") from None
                if duplicate:
                    from loomctl.validation import shown

                    raise BadInput(f"{source}: line {key_node.start_mark.line + 1}: key {shown(key)!r} appears twice")
            return super().construct_mapping(node, deep=deep)

        def construct_yaml_int(self, node: Any) -> Any:
            # PyYAML hands the digits to int(), which refuses over 4,300 of them with a ValueError
            if len(str(node.value)) > 100:
                raise BadInput(
                    f"{source}: line {node.start_mark.line + 1}: a number of {len(str(node.value)):,} "
                    "characters: out of every range"
                )
            return super().construct_yaml_int(node)

    StrictLoader.add_constructor("tag:yaml.org,2002:int", StrictLoader.construct_yaml_int)
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise BadInput(f"{source}: not YAML or JSON: {' '.join(str(exc).split())[:200]}") from None
    except RecursionError:
        raise BadInput(f"{source}: nested too deeply to be a file of services") from None


def parse_specs(text: str, source: str = "input") -> list[ServiceSpec]:
    """Services from a YAML or JSON document: ``{services: [...]}``, a list, or a mapping by name."""
    if "\x00" in text:
        raise BadInput(f"{source}: contains a NUL character: not a text file")
    document = _load_yaml(text, source)
    if isinstance(document, Mapping) and "services" in document:
        extra = [k for k in document if k not in ROOT_KEYS]
        if extra:
            raise _unknown_key(source, extra[0], ROOT_KEYS)
        document = document["services"]
        where = f"{source}: services"
    else:
        where = source
    if isinstance(document, Mapping):
        # the mapping-by-name form: every value is one service's keys
        for name, body in document.items():
            if body is not None and not isinstance(body, Mapping):
                from loomctl.validation import shown

                hint = " (did you mean services?)" if str(name) != "services" and _close_to_services(name) else ""
                raise BadInput(f"{where}: {shown(name)!r} must be a mapping of a service's keys{hint}, got {type(body).__name__}")
        document = [{"service_name": name, **(body or {})} for name, body in document.items()]
    if document is None:
        document = []
    if not isinstance(document, list):
        raise BadInput(f"{where}: expected a list of services under 'services', got {type(document).__name__}")
    items = [_spec_from_document(doc, f"{source}: service {i + 1}") for i, doc in enumerate(document)]
    for key in ("service_name", "consumer_group_id"):
        seen: set[str] = set()
        for item in items:
            value = getattr(item, key)
            if value in seen:
                raise BadInput(f"{source}: {key} {value!r} appears twice")
            seen.add(value)
    return items


def _close_to_services(name: Any) -> bool:
    import difflib

    return bool(difflib.get_close_matches(str(name), ["services"], n=1, cutoff=0.75))


def read_specs(path: Path) -> list[ServiceSpec]:
    """Services from a file: UTF-8 text of at most 16 MiB, or BadInput naming what is wrong."""
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > MAX_FILE_BYTES:
        raise BadInput(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB: not a file of services")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    return parse_specs(text, str(path))


def plan_import(session: "Executor", items: Iterable[ServiceSpec], *, prune: bool = False) -> ImportPlan:
    """Compare the file with the database: what would be created, changed, left alone or deleted."""
    from loomctl.configs.store import CLUSTER, DEFAULT_CLUSTER, Action, _require_cluster, changes_between, list_configs

    label = IMPORT_PLAN_LABELS
    current = {c.service_name: c for c in list_configs(session)}
    checked = {c.cluster_name for c in current.values()}
    plan: list[PlanItem] = []
    wanted = set()
    for spec in items:
        wanted.add(spec.service_name)
        existing = current.get(spec.service_name)
        values = spec.values()
        values.setdefault(CLUSTER, existing.cluster_name if existing else DEFAULT_CLUSTER)
        if values[CLUSTER] not in checked:
            _require_cluster(session, values[CLUSTER])
            checked.add(values[CLUSTER])
        if existing is None:
            plan.append(PlanItem(spec.service_name, label[Action.CREATE], changes_between(None, values), None, values))
            continue
        changes = changes_between(existing.values(), values)
        action = Action.UPDATE if changes else Action.UNCHANGED
        plan.append(PlanItem(spec.service_name, label[action], changes, existing.version, values))
    if prune:
        for name, existing in current.items():
            if name not in wanted:
                plan.append(
                    PlanItem(name, label[Action.DELETE], changes_between(existing.values(), None), existing.version, None)
                )
    return ImportPlan(plan, prune)


def apply_import(session: "Executor", plan: ImportPlan, *, actor: str, reason: str | None = None) -> list["ChangeResult"]:
    """Carry out a plan in the caller's transaction; a service changed since planning is a Conflict."""
    from loomctl.configs.store import Action, ChangeResult, delete_row, insert_row, record_who_and_why, reloads_of, update_row

    if not plan.has_changes:
        return []
    label = IMPORT_PLAN_LABELS
    record_who_and_why(session, actor, reason or "config import")
    results = []
    # Deletes first, so a group id freed by a pruned service can be taken by a new one.
    for item in sorted(plan.items, key=lambda i: i.action != label[Action.DELETE]):
        if item.action == label[Action.DELETE]:
            assert item.expected_version is not None  # the plan read the row it deletes
            delete_row(session, item.service_name, item.expected_version)
            results.append(ChangeResult(item.service_name, Action.DELETE, item.changes, item.expected_version, None))
        elif item.action == label[Action.CREATE]:
            assert item.values is not None
            version = insert_row(session, item.service_name, item.values)
            results.append(ChangeResult(item.service_name, Action.CREATE, item.changes, None, version))
        elif item.action == label[Action.UPDATE]:
            assert item.values is not None and item.expected_version is not None
            version = update_row(session, item.service_name, item.values, item.expected_version)
            reloads = reloads_of(item.changes, item.values)
            results.append(ChangeResult(item.service_name, Action.UPDATE, item.changes, item.expected_version, version,
                                        reloads=reloads))  # fmt: skip
    return results
