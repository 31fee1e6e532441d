"""Starlette: what every endpoint and service process needs (bodies, errors, auth, metrics)."""
