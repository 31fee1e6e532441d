"""JWT access and refresh tokens (joserfc)."""
