"""The Parley application: each public method is a command (load, act, save in one transaction)."""

from __future__ import annotations

from domain.accounts import AccountCommands
from domain.chats import ChatCommands
from domain.store import Claim, Outcome

__all__ = ["Claim", "Outcome", "Parley"]


class Parley(AccountCommands, ChatCommands):
    """Command handlers over one events table, `parley_events`."""

    name = "parley"
