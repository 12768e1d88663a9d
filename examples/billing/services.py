"""The outside world of the billing service: accounts, invoices, e-mail.

In-memory fakes of what would be a database, an invoicing API and an e-mail provider in
production. They are external to the workers: a worker crash does not unsend an e-mail or
un-issue an invoice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Accounts:
    #: account id -> "trial", "active", "suspended" or "closed"
    status: dict[str, str] = field(default_factory=dict)

    def reset(self) -> None:
        self.status.clear()


@dataclass
class Invoices:
    #: invoice id -> (account id, amount in cents, "open" / "paid" / "void")
    invoices: dict[str, tuple[str, int, str]] = field(default_factory=dict)

    def issue(self, account_id: str, amount_cents: int) -> str:
        # Idempotent: one invoice per account and billing period, whatever the retries.
        invoice_id = f"inv-{account_id}-1"
        self.invoices.setdefault(invoice_id, (account_id, amount_cents, "open"))
        return invoice_id

    def set_state(self, invoice_id: str, state: str) -> None:
        account_id, amount, _ = self.invoices[invoice_id]
        self.invoices[invoice_id] = (account_id, amount, state)

    def of(self, account_id: str) -> list[tuple[str, int, str]]:
        return [(i, amount, state) for i, (acc, amount, state) in self.invoices.items()
                if acc == account_id]

    def reset(self) -> None:
        self.invoices.clear()


@dataclass
class Mailer:
    """Every e-mail sent: (account, template, when)."""

    sent: list[tuple[str, str, datetime]] = field(default_factory=list)

    def send(self, account_id: str, template: str, when: datetime) -> None:
        self.sent.append((account_id, template, when))

    def sent_to(self, account_id: str, template: str) -> list[datetime]:
        return [when for acc, tpl, when in self.sent if (acc, tpl) == (account_id, template)]

    def reset(self) -> None:
        self.sent.clear()


accounts = Accounts()
invoices = Invoices()
mailer = Mailer()
