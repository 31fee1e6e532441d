"""The command API: validates writes and appends events to the event store."""
