"""The write model: aggregates, their events and the application whose methods are the commands."""
