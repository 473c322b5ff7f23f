"""Apache Kafka 4.4.0's JSON message schemas of the group APIs kafka-python 3.0.12 has no codec for, copied unchanged
(their Apache license headers kept) from kafka-clients-4.4.0.jar's common/message/; loomctl.kafka.protocol's request
and response classes are built from them by kafka-python's own metaclass. When Kafka adds a version, copy its files
again: older versions stay readable, because each request's version is the highest both sides know."""
