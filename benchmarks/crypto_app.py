"""The encryption benchmark's apps: the same workflow on a plain app and an encrypted one.

pynenc needs tasks at module level in an importable module, so they live here; the keys are
fixed bytes (a benchmark, not a deployment).
"""

from __future__ import annotations

from pynenc import Pynenc

from pynenc_wf_testing.engine import Keyring, enable_workflows

plain_app = enable_workflows(Pynenc(config_values={"app_id": "bench-plain", "logging_level": "error"}))
encrypted_app = enable_workflows(
    Pynenc(config_values={"app_id": "bench-encrypted", "logging_level": "error"}),
    encryption=Keyring({"k1": bytes(range(64))}, current="k1"),
)


@plain_app.task
def plain_step(index: int, payload: dict[str, str]) -> dict[str, str]:
    return {**payload, "last": str(index)}


@encrypted_app.task
def encrypted_step(index: int, payload: dict[str, str]) -> dict[str, str]:
    return {**payload, "last": str(index)}


@plain_app.workflow
def plain_chain(n_steps: int) -> dict[str, str]:
    payload = {"customer": "c-1", "card": "4242 4242 4242 4242", "last": ""}
    for i in range(n_steps):
        payload = plain_chain.wf.root.execute_task(plain_step, i, payload).result
        plain_chain.wf.set_data(f"after:{i}", payload)
    return payload


@encrypted_app.workflow
def encrypted_chain(n_steps: int) -> dict[str, str]:
    payload = {"customer": "c-1", "card": "4242 4242 4242 4242", "last": ""}
    for i in range(n_steps):
        payload = encrypted_chain.wf.root.execute_task(encrypted_step, i, payload).result
        encrypted_chain.wf.set_data(f"after:{i}", payload)
    return payload
