"""The query API: serves every GET from the read-model tables."""
