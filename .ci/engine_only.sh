#!/usr/bin/env bash
# The engine with pynenc alone: a second venv holds pynenc (the range pyproject.toml names),
# pytest, and this package installed --no-deps, so freezegun, greenlet and hypothesis are not
# even installed. The production engine tests (tests/production) must pass there: proof that
# the engine (pynenc_wf_testing.engine) needs nothing of the testing harness.
#
# Usage: .ci/engine_only.sh [pytest args]. ENGINE_VENV names the venv (default .venv-engine,
# reused when it exists; delete it to start over).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${ENGINE_VENV:-.venv-engine}"
if [ -z "${PYTHON:-}" ]; then
    # pynenc 0.4 needs Python >= 3.12 (the same search as the Makefile's).
    for candidate in python3.12 python3.13 python3; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            PYTHON="$(command -v "$candidate")"
            break
        fi
    done
fi
if [ -z "${PYTHON:-}" ]; then
    echo "error: Python >= 3.12 is required (pynenc 0.4 needs it); none found on PATH" >&2
    exit 1
fi

# The pynenc requirement exactly as pyproject.toml states it (e.g. "pynenc>=0.4,<0.5").
PYNENC_REQ="$("$PYTHON" - <<'PY'
import tomllib
with open("pyproject.toml", "rb") as f:
    deps = tomllib.load(f)["project"]["dependencies"]
print(next(d for d in deps if d.replace(" ", "").startswith(("pynenc>", "pynenc=", "pynenc<"))))
PY
)"
PYTEST_REQ="$("$PYTHON" - <<'PY'
import tomllib
with open("pyproject.toml", "rb") as f:
    deps = tomllib.load(f)["project"]["dependencies"]
print(next(d for d in deps if d.replace(" ", "").startswith(("pytest>", "pytest=", "pytest<"))))
PY
)"

# Encryption (enable_workflows(encryption=...)) is the engine's one optional dependency: the
# `crypto` extra, installed so that its production tests run here too.
CRYPTO_REQ="$("$PYTHON" - <<'PY'
import tomllib
with open("pyproject.toml", "rb") as f:
    print(tomllib.load(f)["project"]["optional-dependencies"]["crypto"][0])
PY
)"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q "$PYNENC_REQ" "$PYTEST_REQ" "$CRYPTO_REQ"
"$VENV/bin/python" -m pip install -q --no-deps -e .

# What the venv must not hold: if one of these came in (a dependency of pynenc or pytest one
# day), the production tests would no longer prove the engine does without them.
"$VENV/bin/python" - <<'PY'
import importlib.util, sys
present = [m for m in ("freezegun", "greenlet", "hypothesis") if importlib.util.find_spec(m)]
if present:
    sys.exit(f"the engine-only venv unexpectedly holds {', '.join(present)}")
PY

echo "engine-only venv $VENV: $("$VENV/bin/python" -m pip list --format=freeze 2>/dev/null \
    | grep -iE '^(pynenc|pytest|pynenc-wf-testing|cryptography)==' | tr '\n' ' ')"
"$VENV/bin/python" -m pytest -q tests/production "$@"
