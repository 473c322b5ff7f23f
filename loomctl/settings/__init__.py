"""Where loomctl finds its backends: flags first, then LOOM_* environment variables.

The database URL is checked once, before anything connects with it, and every message that shows it goes through
:func:`mask_url` (:mod:`~loomctl.settings.database_url`); the Kafka properties file is parsed strictly, and no error
about it ever shows a value (:mod:`~loomctl.settings.properties`). The names below are the package's API.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from loomctl.errors import BadInput
from loomctl.settings.database_url import (  # noqa: F401
    SCHEMES,
    SECRET_PARAMETERS,
    check_database_url,
    libpq_form,
    libpq_url,
    mask_url,
    sqlalchemy_url,
)
from loomctl.settings.properties import (  # noqa: F401
    PROPERTIES_MAX_BYTES,
    is_secret_property,
    parse_properties,
    read_properties_file,
    redact,
)

ENV_DATABASE_URL = "LOOM_DATABASE_URL"
ENV_BOOTSTRAP_SERVERS = "LOOM_KAFKA_BOOTSTRAP_SERVERS"
ENV_KAFKA_CONFIG = "LOOM_KAFKA_CONFIG"
ENV_ACTOR = "LOOM_ACTOR"


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    bootstrap_servers: str | None = None
    kafka_config: Path | None = None
    actor: str | None = None

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        """Settings from the environment, with non-None ``overrides`` (the CLI flags) winning."""
        values: dict[str, object] = {
            "database_url": os.environ.get(ENV_DATABASE_URL) or None,
            "bootstrap_servers": os.environ.get(ENV_BOOTSTRAP_SERVERS) or None,
            "kafka_config": Path(os.environ[ENV_KAFKA_CONFIG]) if os.environ.get(ENV_KAFKA_CONFIG) else None,
            "actor": os.environ.get(ENV_ACTOR) or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def require_database_url(self) -> str:
        """The checked database URL (a keyword DSN comes back as a URL); BadInput when unset or invalid."""
        url = self.checked_database_url()
        if url is None:
            raise BadInput(
                f'no database URL: pass --database-url or set {ENV_DATABASE_URL} (for the local stack: eval "$(loomctl dev env)")'
            )
        return url

    def checked_database_url(self) -> str | None:
        """Like :meth:`require_database_url`, but None when no URL is configured."""
        if not self.database_url or not self.database_url.strip():
            return None
        return check_database_url(self.database_url)

    def resolved_actor(self) -> str:
        if self.actor:
            return self.actor
        import getpass

        try:
            return getpass.getuser()
        except (KeyError, OSError):  # no passwd entry, e.g. in some containers
            return "unknown"

    def kafka_properties(self) -> dict[str, str]:
        """librdkafka client properties: the properties file (SASL/SSL), then bootstrap servers."""
        props: dict[str, str] = {}
        if self.kafka_config is not None:
            props.update(read_properties_file(self.kafka_config))
        if self.bootstrap_servers:
            props["bootstrap.servers"] = self.bootstrap_servers
        if "bootstrap.servers" not in props:
            raise BadInput(
                f"no Kafka bootstrap servers: pass --bootstrap-servers or set {ENV_BOOTSTRAP_SERVERS} "
                f"(or bootstrap.servers in the {ENV_KAFKA_CONFIG} file)"
            )
        check_bootstrap_servers(props["bootstrap.servers"])
        return props


def check_bootstrap_servers(text: str) -> None:
    """``host[:port][,...]`` as librdkafka reads it (a ``scheme://`` before a host, ``[v6]`` hosts): refused here, in
    one line, when a port is not ASCII digits from 1 to 65535 or a host is empty, where librdkafka would try to
    resolve it for as long as the command waits."""
    from loomctl.validation import shown

    for entry in text.split(","):
        address = entry.strip().rpartition("://")[2]
        if address.startswith("["):
            host, _, rest = address[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else (None if not rest else "")
        else:
            host, colon, port_text = address.rpartition(":") if address.count(":") == 1 else (address, "", "")
            port = port_text if colon else None
        if not host.strip():
            raise BadInput(f"bootstrap servers {shown(text)}: a server without a host (expected host:port[,host:port])")
        if port is not None and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
            raise BadInput(
                f"bootstrap servers {shown(text)}: the port of {shown(entry.strip())} must be a number from 1 to 65535"
            )
