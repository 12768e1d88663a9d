"""Module-level app with encrypted payloads for the harness tests (tests/test_crypto.py).

The keys are fixed bytes so that histories are reproducible (AES-SIV is deterministic: the
same key and plaintext give the same ciphertext). Every payload carries ``MARKER``. Like a
production app, it takes its keys from the environment when ``PYNENC_WF_TEST_KEYS`` is set
(``Keyring.from_env``): that is how ``pynenc-wf replay`` and ``export``, which import the
app, get them (tests/test_crypto.py runs them so).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from pynenc import Pynenc

from pynenc_wf_testing.engine import Keyring, enable_workflows

MARKER = "SECRET-CARD-4242"
KEY_1 = bytes(range(64))
KEY_2 = bytes(range(64, 128))
KEYS_ENV = "PYNENC_WF_TEST_KEYS"
KEYRING = (
    Keyring.from_env(KEYS_ENV) if os.environ.get(KEYS_ENV) else Keyring({"k1": KEY_1}, "k1")
)

app = enable_workflows(Pynenc(config_values={"app_id": "crypto-tests"}), encryption=KEYRING)


class Declined(Exception):
    pass


@app.task
def charge(card: str) -> str:
    return f"charged {card}"


@app.task
def refuse(card: str) -> str:
    raise Declined(f"declined {card}")


@app.workflow
def checkout(card: str) -> dict[str, Any]:
    """Arguments, a child's arguments and result, workflow data, saved state, a durable
    timer, a signal and the result all carry ``card``."""
    root = checkout.wf.root
    receipt = root.execute_task(charge, card).result
    checkout.wf.set_data("card-note", f"note for {card}")
    checkout.wf.save_state({"phase": f"charged {card}"})
    root.sleep(dt.timedelta(hours=1))
    approval = root.wait_for_signal("approve", timeout=dt.timedelta(days=1), default=None)
    return {"receipt": receipt, "approval": approval}


@app.workflow
def failing_checkout(card: str) -> str:
    return failing_checkout.wf.root.execute_task(refuse, card).result  # type: ignore[no-any-return]


@app.workflow
def nightly() -> str:
    """No argument: nothing of its own names the key it started with (docs/security.md)."""
    return nightly.wf.root.execute_task(charge, MARKER).result  # type: ignore[no-any-return]
