"""Hashes of recorded histories: proof that a refactor changed no behaviour.

    .venv/bin/python benchmarks/history_hashes.py > before.txt   # on the old commit
    .venv/bin/python benchmarks/history_hashes.py > after.txt    # on the new one
    diff before.txt after.txt                                    # empty: byte-identical

Covers the example suites (every test's history, through ``--wf-record``, under several seeds)
and the benchmark workload under several seeds, with and without a crash, with ``.result`` read
mid-run. Only public API is used, so the script runs unchanged on both sides of a refactor.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = (1, 2, 3)


def _digest(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()[:16]


def example_hashes() -> list[str]:
    lines = []
    for seed in SEEDS:
        with tempfile.TemporaryDirectory() as out:
            subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "examples",
                 f"--wf-seed={seed}", f"--wf-record={out}"],
                cwd=ROOT, check=True, capture_output=True,
                env={**os.environ, "PYTHONHASHSEED": "0"},
            )
            for path in sorted(pathlib.Path(out).glob("*.json")):
                lines.append(f"examples seed={seed} {path.name} {_digest(path.read_bytes())}")
    return lines


def workload_hashes() -> list[str]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    sys.path.insert(0, str(ROOT))
    import bench_app

    from pynenc_wf_testing import WorkflowEnv

    lines = []
    for seed in SEEDS:
        for crash in (None, "step#3", "route:step#5"):
            with WorkflowEnv(seed=seed) as env:
                env.use(bench_app.app)
                if crash is not None:
                    env.crash_after(crash)
                runs = [env.start(bench_app.chain, w, 6) for w in range(4)]
                first = runs[1].result  # read mid-run
                results = [run.result for run in runs]
                text = env.history_json()
            lines.append(
                f"workload seed={seed} crash={crash} {first} {results} {_digest(text)}"
            )
    return lines


def main() -> int:
    for line in workload_hashes() + example_hashes():
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
