"""Use cases: one database transaction each, audit event and outbox rows included."""
