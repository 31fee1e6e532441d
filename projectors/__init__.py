"""Projectors: follow the event log, keep read-model tables (exactly once) and publish to NATS."""
