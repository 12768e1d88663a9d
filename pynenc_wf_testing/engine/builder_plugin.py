"""pynenc plugin entry point (group ``pynenc.plugins``): ``PynencBuilder().enable_workflows()``.

pynenc imports this module whenever an app is created, so it imports nothing but pynenc's
builder hook; the engine itself is imported only when the builder method is called.
"""

from __future__ import annotations

from typing import Any

__all__ = ["WorkflowEnginePlugin"]


def _enable_workflows(builder: Any, *args: Any, retry_policy: Any = None, **options: Any) -> Any:
    """``PynencBuilder().enable_workflows(retry_policy=..., workflow_max_retries=...,
    encryption=...)``: switch on the durable-workflow engine (timers, signals, queries, waits,
    retry policies, halt/resume, compensation, encrypted payloads); see
    ``pynenc_wf_testing.engine.enable_workflows``."""
    from pynenc_wf_testing.engine import InvalidWorkflowArgument, enable_workflows_in_config

    if args:  # Python's own error would name this private function
        raise InvalidWorkflowArgument(
            f"enable_workflows() takes keyword arguments only, got {len(args)} positional "
            f"({', '.join(type(a).__name__ for a in args)}); write e.g. "
            "enable_workflows(retry_policy=RetryPolicy(...), workflow_max_retries=3)."
        )
    unknown = sorted(set(options) - {"workflow_max_retries", "encryption"})
    if unknown:
        raise InvalidWorkflowArgument(
            f"enable_workflows() got unknown options {unknown}; it takes retry_policy=, "
            "workflow_max_retries= and encryption=."
        )
    # Into the config the builder hands to the app at build(): the settings belong to that
    # app whatever the order of the builder calls (``.app_id()`` may come later).
    enable_workflows_in_config(builder._config, retry_policy=retry_policy, **options)
    return builder


def _keep_encryption(config: dict[str, Any]) -> None:
    """Builder validator (runs at ``build()``): a ``.serializer_json()`` (or any serializer
    choice) made after ``.enable_workflows(encryption=...)`` replaced the encrypting
    serializer; wrap the chosen one instead of silently storing plaintext. And refuse a
    ``serializer_cls`` from the environment or a config file, which pynenc would prefer."""
    from pynenc_wf_testing.engine import crypto
    from pynenc_wf_testing.engine._ops import DEFAULTS_KEY

    ref = (config.get(DEFAULTS_KEY) or {}).get("encryption")
    if ref is None:
        return
    chosen = config.get("serializer_cls")
    if not crypto.is_encrypted_serializer(chosen):
        keyring = crypto._KEYRINGS[ref]
        config["serializer_cls"] = crypto.register_keyring(
            keyring, crypto.inner_serializer(chosen)
        )[1]
    crypto.check_serializer_applies(config, config["serializer_cls"], config.get("config_filepath"))


class WorkflowEnginePlugin:
    """Registers the builder method ``enable_workflows`` (and its check at ``build()``)."""

    @classmethod
    def register_builder_methods(cls, builder_cls: Any) -> None:
        builder_cls.register_plugin_method("enable_workflows", _enable_workflows)
        builder_cls.register_plugin_validator(_keep_encryption)
