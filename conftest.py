"""Repository-level pytest configuration (the wf_env fixture itself comes from the plugin)."""

import importlib
import importlib.util
import pkgutil

import pynenc_wf_testing

# The plugin's own tests drive inner pytest runs.
pytest_plugins = ["pytester"]

# pytester's in-process runs restore sys.modules afterwards, dropping what they imported
# first: a module of ours first imported inside one would be imported again later, with new
# class objects, while the package root keeps the old ones it already handed out (the
# lazy exports of pynenc_wf_testing/__init__.py). Import every module of the package here, so
# the whole suite sees one copy of each, in whatever order its tests run. (Not in the
# engine-only venv of .ci/engine_only.sh, which holds the engine's dependencies only.)
if importlib.util.find_spec("greenlet") is not None:
    for _module in pkgutil.walk_packages(pynenc_wf_testing.__path__, "pynenc_wf_testing."):
        importlib.import_module(_module.name)
