"""loomctl: consumer tuning, lag and partition changes for a Kafka pipeline, kept in PostgreSQL."""

__version__ = "0.1.0"
