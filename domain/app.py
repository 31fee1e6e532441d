"""The Parley application: each public method is a command (load, act, save in one transaction)."""

from __future__ import annotations

from domain.account_commands import AccountCommands
from domain.chat_commands import ChatCommands
from domain.eventstore.idempotency import Claim
from domain.outcomes import Outcome

__all__ = ["Claim", "Outcome", "Parley"]


class Parley(AccountCommands, ChatCommands):
    """Command handlers over one events table, `parley_events`."""

    name = "parley"
