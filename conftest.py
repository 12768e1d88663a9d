"""Repository-level pytest configuration (the wf_env fixture itself comes from the plugin)."""
