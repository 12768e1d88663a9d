"""What encrypted payloads cost: the same workflows on a plain and an encrypted app.

    .venv/bin/python benchmarks/crypto_overhead.py [--workflows 10] [--steps 10] [--rounds 5]

Runs the workflows under the harness on each backend (interleaved rounds, median), and times
one payload's serialize + deserialize with each app's serializer. Prints steps/s and the ratio
encrypted / plain (docs/security.md quotes the figures).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import crypto_app as ca
from pynenc_wf_testing import WorkflowEnv


def _round(workflow: object, backend: str, workflows: int, steps: int) -> float:
    began = time.perf_counter()
    with WorkflowEnv(seed=1, backend=backend) as env:
        runs = [env.start(workflow, steps) for _ in range(workflows)]  # type: ignore[call-overload]
        for run in runs:
            run.result
    return workflows * steps / (time.perf_counter() - began)


def _payload_us(app: object, rounds: int = 2000) -> float:
    serializer = app.serializer  # type: ignore[attr-defined]
    value = {"customer": "c-1", "card": "4242 4242 4242 4242", "items": list(range(20))}
    began = time.perf_counter()
    for _ in range(rounds):
        serializer.deserialize(serializer.serialize(value))
    return (time.perf_counter() - began) / rounds * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{args.workflows} workflows x {args.steps} steps, median of {args.rounds} rounds")
    for backend in ("memory", "sqlite"):
        plain, encrypted = [], []
        for _ in range(args.rounds):
            plain.append(_round(ca.plain_chain, backend, args.workflows, args.steps))
            encrypted.append(_round(ca.encrypted_chain, backend, args.workflows, args.steps))
        p, e = statistics.median(plain), statistics.median(encrypted)
        print(f"{backend:7s} plain {p:7.0f} steps/s  encrypted {e:7.0f} steps/s  ratio {e / p:.2f}")
    p_us, e_us = _payload_us(ca.plain_app), _payload_us(ca.encrypted_app)
    print(f"one payload serialize+deserialize: plain {p_us:.1f} us, encrypted {e_us:.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
