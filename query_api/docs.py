"""Placeholder replaced by the documentation module."""

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    return []
