"""Development tooling, never imported by a service: the infrastructure ladder that provides
PostgreSQL and Kafka (``infra``), the local platform behind ``make up`` (``stack``) and the
pytest plugin every package's tests use (``testing``)."""
