"""`loomctl lag`: live lag from the cluster, the collector, history and status."""

from __future__ import annotations

from loomctl.cli import new_app

app = new_app("Consumer lag: live from Kafka, sampled into PostgreSQL, judged over a time window.")
