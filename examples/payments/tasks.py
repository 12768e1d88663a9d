"""Invoice settlement, with a bug planted on purpose for `pynenc-wf simulate` to find.

`settle_invoice_workflow` charges the customer's card, then books the payment. The card
gateway is not idempotent (`@non_idempotent`) and the charge carries no idempotency key:
when a worker dies after the gateway charged the card but before pynenc recorded the result,
the replay charges the card again. `make demo` does not run this file; try:

    PYTHONPATH=examples pynenc-wf simulate payments.tasks:settle_invoice_workflow \\
        --args '["inv-1", 4200]' --runs 50
"""

from __future__ import annotations

import time

from pynenc import Pynenc
from pynenc_wf_testing import non_idempotent

app = Pynenc(config_values={"app_id": "payments"})


class GatewayBusy(Exception):
    """The card gateway asked us to retry later (nothing was charged)."""


@non_idempotent
@app.task(retry_for=(GatewayBusy,), max_retries=2)
def charge_card(invoice_id: str, amount: int) -> str:
    time.sleep(2)  # the gateway call
    return f"ch-{invoice_id}-{amount}"


@app.task
def book_payment(invoice_id: str, charge_id: str) -> str:
    time.sleep(1)
    return f"booked {charge_id} for {invoice_id}"


@app.workflow
def settle_invoice_workflow(invoice_id: str, amount: int) -> str:
    root = settle_invoice_workflow.wf.root
    charge_id = root.execute_task(charge_card, invoice_id, amount).result
    return root.execute_task(book_payment, invoice_id, charge_id).result
