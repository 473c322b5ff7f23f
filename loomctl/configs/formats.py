"""The export formats of `config export`: one small class per format, chosen by name from one table,
and the service spec they write (the shape of a file of services).

The CLI reads :data:`FORMAT_NAMES` when it is imported, for its ``--format`` choices, so this
module imports nothing of the store or the field table until a format renders: `loomctl --help`
must not pay for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class ServiceSpec:
    """One service in a declarative file: the shape of `config export --format yaml`."""

    service_name: str
    consumer_group_id: str
    profile: str | None
    description: str | None
    settings: dict[str, Any]
    lag_slo_seconds: int | None = None
    """The service's lag objective in seconds (not a client setting: the client formats leave it out)."""
    cluster_name: str | None = None
    """The cluster its group lives on; None where a file does not say (a new service: the default cluster; an
    existing one stays where it is). Written only when not the default, so a one-cluster file reads as before."""

    def values(self) -> dict[str, Any]:
        cluster = {} if self.cluster_name is None else {"cluster_name": self.cluster_name}
        return {
            "consumer_group_id": self.consumer_group_id,
            "profile": self.profile,
            "description": self.description,
            "lag_slo_seconds": self.lag_slo_seconds,
            **cluster,
            **self.settings,
        }

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"service_name": self.service_name, "consumer_group_id": self.consumer_group_id}
        if self.profile is not None:
            doc["profile"] = self.profile
        if self.description is not None:
            doc["description"] = self.description
        if self.lag_slo_seconds is not None:
            doc["lag_slo_seconds"] = self.lag_slo_seconds
        if self.cluster_name not in (None, "default"):
            doc["cluster_name"] = self.cluster_name
        doc["settings"] = dict(self.settings)
        return doc


class ExportFormat:
    """A way to write services as text: yaml and json are what `config import` reads back, the others
    are what each client reads."""

    name: ClassVar[str]

    def render(self, items: Sequence[ServiceSpec]) -> str:
        raise NotImplementedError


class YamlFormat(ExportFormat):
    name = "yaml"

    def render(self, items: Sequence[ServiceSpec]) -> str:
        import yaml

        return yaml.safe_dump({"services": [s.document() for s in items]}, sort_keys=False, allow_unicode=True)


class JsonFormat(ExportFormat):
    name = "json"

    def render(self, items: Sequence[ServiceSpec]) -> str:
        import json

        return json.dumps({"services": [s.document() for s in items]}, indent=2, ensure_ascii=False) + "\n"


def _properties_block(title: str, props: Mapping[str, str]) -> str:
    return "\n".join([f"# {title}"] + [f"{k}={v}" for k, v in props.items()]) + "\n"


class LibrdkafkaFormat(ExportFormat):
    name = "librdkafka"

    def render(self, items: Sequence[ServiceSpec]) -> str:
        from loomctl.configs.store import client_options

        # librdkafka's consumer has no max.poll.records: services pass it to consume(num_messages=...); its share
        # consumer (a preview) takes max.poll.records itself
        return "\n".join(
            _properties_block(
                f"{s.service_name} (librdkafka share consumer, a preview; the broker-side settings: loomctl config push)"
                if s.settings.get("group_protocol") == "share"
                else f"{s.service_name} (librdkafka; batch size max_poll_records={s.settings['max_poll_records']})",
                client_options(self.name, s.consumer_group_id, s.settings),
            )
            for s in items
        )


class JavaFormat(ExportFormat):
    name = "java"

    def render(self, items: Sequence[ServiceSpec]) -> str:
        from loomctl.configs.store import client_options

        return "\n".join(
            _properties_block(
                f"{s.service_name} (Java KafkaShareConsumer; the broker-side settings: loomctl config push)"
                if s.settings.get("group_protocol") == "share"
                else f"{s.service_name} (Java client)",
                client_options(self.name, s.consumer_group_id, s.settings),
            )
            for s in items
        )


class KafkajsFormat(ExportFormat):
    name = "kafkajs"

    def render(self, items: Sequence[ServiceSpec]) -> str:
        import json

        from loomctl.configs.store import client_options

        document = {}
        for s in items:
            document[s.service_name] = client_options(self.name, s.consumer_group_id, s.settings)
            if s.settings.get("group_protocol") == "consumer":
                document[s.service_name]["note"] = KAFKAJS_CONSUMER_PROTOCOL_NOTE
            elif s.settings.get("group_protocol") == "share":
                document[s.service_name]["note"] = KAFKAJS_SHARE_GROUP_NOTE
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


KAFKAJS_CONSUMER_PROTOCOL_NOTE = (
    "KafkaJS has no consumer group protocol (KIP-848): this service is configured group_protocol=consumer, "
    "but a KafkaJS member joins with the classic protocol and sends the session timeout and heartbeat above "
    "itself; the group configs `loomctl config push` sets on the broker do not apply to it"
)


KAFKAJS_SHARE_GROUP_NOTE = (
    "KafkaJS has no share consumer (KIP-932): this service is configured group_protocol=share, and a KafkaJS "
    "consumer cannot join its share group; the loomctl Node package refuses to build one"
)


class EnvFormat(ExportFormat):
    name = "env"

    @staticmethod
    def _name(service_name: str, suffix: str) -> str:
        stem = "".join(ch if ch.isalnum() else "_" for ch in service_name.upper())
        return f"LOOM_{stem}_{suffix.upper()}"

    def render(self, items: Sequence[ServiceSpec]) -> str:
        import shlex

        lines = []
        for s in items:
            lines.append(f"{self._name(s.service_name, 'consumer_group_id')}={shlex.quote(s.consumer_group_id)}")
            lines.extend(
                f"{self._name(s.service_name, name)}={shlex.quote(str(value).lower() if isinstance(value, bool) else str(value))}"
                for name, value in s.settings.items()
            )
        return "\n".join(lines) + ("\n" if lines else "")


FORMATS: dict[str, ExportFormat] = {
    f.name: f for f in (YamlFormat(), JsonFormat(), LibrdkafkaFormat(), JavaFormat(), KafkajsFormat(), EnvFormat())
}
"""Every export format by name: the CLI's ``--format`` choices are these."""
FORMAT_NAMES: tuple[str, ...] = tuple(FORMATS)
