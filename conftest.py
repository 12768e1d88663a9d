"""Repository-level pytest configuration (the wf_env fixture itself comes from the plugin)."""

# The plugin's own tests drive inner pytest runs.
pytest_plugins = ["pytester"]
