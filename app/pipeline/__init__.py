"""The pipeline every face and worker shares, and that imports no Flask: the log record,
the stream (Redis), the store (PostgreSQL), the fan-out (Pub/Sub), partitions, counters,
and the process-wide connections."""
