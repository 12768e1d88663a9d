"""The shop's view of the outside world: a payment gateway and a warehouse.

In production these would be HTTP clients (Stripe, the warehouse's REST API). Here they are
small in-memory fakes so the example runs anywhere. What matters for testing: they are
*external* systems. A worker crash wipes the worker's memory, not the money a gateway has
already taken, so tests can ask "how many times was the card really charged?".
"""

from __future__ import annotations

from dataclasses import dataclass, field


class TransientPaymentError(Exception):
    """The gateway timed out or answered 503: trying again is safe and usually works."""


class PaymentDeclined(Exception):
    """The card was declined: trying again will not help."""


@dataclass
class PaymentGateway:
    """A payment provider. ``charge`` is NOT idempotent: every call takes money."""

    declined_cards: set[str] = field(default_factory=lambda: {"tok_declined"})
    charges: list[tuple[str, int]] = field(default_factory=list)

    def charge(self, order_id: str, amount_cents: int, card: str) -> str:
        if card in self.declined_cards:
            raise PaymentDeclined(f"card {card} declined for order {order_id}")
        self.charges.append((order_id, amount_cents))
        return f"ch_{len(self.charges)}"

    def charges_for(self, order_id: str) -> int:
        return sum(1 for charged_order, _ in self.charges if charged_order == order_id)

    def reset(self) -> None:
        self.charges.clear()


@dataclass
class Warehouse:
    """Stock levels and the reservations held against them."""

    stock: dict[str, int] = field(default_factory=dict)
    reservations: dict[str, tuple[str, int]] = field(default_factory=dict)

    def reserve(self, order_id: str, sku: str, quantity: int) -> str:
        if order_id not in self.reservations:  # reserving twice for one order is harmless
            self.stock[sku] = self.stock.get(sku, 0) - quantity
            self.reservations[order_id] = (sku, quantity)
        return f"res-{order_id}"

    def release(self, order_id: str) -> None:
        reservation = self.reservations.pop(order_id, None)
        if reservation is not None:
            sku, quantity = reservation
            self.stock[sku] += quantity

    def reset(self, stock: dict[str, int]) -> None:
        self.stock = dict(stock)
        self.reservations.clear()


gateway = PaymentGateway()
warehouse = Warehouse()
