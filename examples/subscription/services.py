"""The outside world of the subscription service: accounts and e-mail.

In-memory fakes of what would be a database and an e-mail provider in production. They are
external to the workers: a worker crash does not unsend an e-mail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Accounts:
    cancelled: set[str] = field(default_factory=set)
    billed: list[str] = field(default_factory=list)

    def cancel(self, account_id: str) -> None:
        """What the web app does when a customer clicks "cancel my trial"."""
        self.cancelled.add(account_id)

    def reset(self) -> None:
        self.cancelled.clear()
        self.billed.clear()


@dataclass
class Outbox:
    """Every e-mail sent: (account, template, when)."""

    sent: list[tuple[str, str, datetime]] = field(default_factory=list)

    def send(self, account_id: str, template: str, when: datetime) -> None:
        self.sent.append((account_id, template, when))

    def sent_at(self, account_id: str, template: str) -> list[datetime]:
        return [when for acc, tpl, when in self.sent if (acc, tpl) == (account_id, template)]

    def reset(self) -> None:
        self.sent.clear()


accounts = Accounts()
outbox = Outbox()
