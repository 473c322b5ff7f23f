"""`loomctl dev`: a local PostgreSQL and Apache Kafka for trying loomctl (placeholder, being written)."""

from loomctl.cli import new_app

app = new_app("A local PostgreSQL and Apache Kafka, without Docker.")
