"""PostgreSQL read-model adapters every service uses: log positions and ended sessions."""
