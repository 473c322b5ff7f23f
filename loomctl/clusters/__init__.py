"""The cluster registry: which Kafka clusters loomctl watches, where their brokers and client properties are, and
what each can do (checked on the cluster).

- :mod:`~loomctl.clusters.store`: ``kafka_clusters`` read, added, changed and removed (audited by a trigger, as the
  configs are), the capabilities last checked, and the :class:`~loomctl.settings.Settings` a cluster's clients use.

Every database has the cluster ``default`` from its first migration on: its brokers are ``--bootstrap-servers`` /
LOOM_KAFKA_BOOTSTRAP_SERVERS and its properties ``--kafka-config`` / LOOM_KAFKA_CONFIG until an operator registers
them, so one cluster works as it did before the registry. Secrets never reach the database: a cluster names a
librdkafka properties file, or an environment variable holding that file's path. The names below are the
package's API.
"""

from __future__ import annotations

from loomctl.clusters.store import (  # noqa: F401
    DEFAULT_CLUSTER,
    ENV_CLUSTER,
    Cluster,
    ClusterChange,
    add_cluster,
    check_cluster_name,
    cluster_history,
    get_cluster,
    parse_labels,
    read_clusters,
    record_check,
    remove_cluster,
    selected_clusters,
    set_cluster,
    settings_for,
)
