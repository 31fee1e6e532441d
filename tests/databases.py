"""PostgreSQL URLs for databases the tests create or administer beside the stack's own."""

from __future__ import annotations

from urllib.parse import urlsplit


def database_url_for(url: str, name: str) -> str:
    """`url` with its database replaced by `name`, whatever else it carries (a query string
    or none, a host or a unix socket dir, credentials)."""
    parts = urlsplit(url)  # urlunsplit would drop an empty host ("postgresql:///db?host=")
    return f"{parts.scheme}://{parts.netloc}/{name}" + (f"?{parts.query}" if parts.query else "")
