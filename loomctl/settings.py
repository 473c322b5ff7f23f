"""Where loomctl finds its backends: flags first, then LOOM_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from loomctl.errors import BadInput

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
        if not self.database_url:
            raise BadInput(
                f"no database URL: pass --database-url or set {ENV_DATABASE_URL} "
                '(for the local stack: eval "$(loomctl dev env)")'
            )
        return self.database_url

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
        return props


def read_properties_file(path: Path) -> dict[str, str]:
    """Parse a Java/librdkafka ``key=value`` properties file (``#`` and ``!`` comments)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read Kafka config file {path}: {exc.strerror}") from None
    props: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        sep = min((i for i in (line.find("="), line.find(":")) if i > 0), default=-1)
        if sep < 0:
            raise BadInput(f"{path}:{number}: expected key=value, got {line!r}")
        props[line[:sep].strip()] = line[sep + 1 :].strip()
    return props


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``, safe to print or log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def sqlalchemy_url(url: str) -> str:
    """A libpq-style URL as SQLAlchemy wants it for psycopg 3 (``postgresql+psycopg://``)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def libpq_url(url: str) -> str:
    """The inverse of :func:`sqlalchemy_url`: what psycopg.connect() accepts."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url
