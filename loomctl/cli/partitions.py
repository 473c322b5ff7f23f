"""`loomctl partitions`: recommend, plan and apply partition increases through the AdminClient."""

from __future__ import annotations

from loomctl.cli import new_app

app = new_app("Partition changes: recommendations from measured load, a plan against the cluster, and apply.")
