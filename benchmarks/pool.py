"""Cost of a worker pool: the same workload with and without ``WorkflowEnv(workers=, slots=)``.

    .venv/bin/python benchmarks/pool.py            # 40 workflows x 10 steps, 7 rounds
    .venv/bin/python benchmarks/pool.py --json
    .venv/bin/python benchmarks/pool.py --quick    # 1 round, 4 x 3 (smoke)

Workload: ``pool_app.chain`` (``bench_app``'s chain: W workflows, each N child steps in sequence), started at once
and awaited. Configurations:

  no pool        the default: one process, unlimited parallelism (the reference)
  4 x 8          workers=4, slots=8: more slots than ever busy at once here
  1 x 1          workers=1, slots=1: everything queues for one slot (each parked workflow
                 frees it; each wake-up waits for it again)
  mixed prio     no pool, half of the workflows' children of a higher priority than the rest
                 (the scheduler then looks for the highest ready priority at every choice)

Figures: the minimum CPU time (``time.process_time``) over the rounds (the machine is shared:
the minimum is the least disturbed run) and its ratio to "no pool". Each configuration also
reports the virtual time its run took, which is what the pool changes on purpose.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CONFIGS: dict[str, dict[str, Any]] = {
    "no pool": {},
    "4 x 8": {"workers": 4, "slots": 8},
    "1 x 1": {"workers": 1, "slots": 1},
    "mixed prio": {"mixed": True},
}


def run_once(seed: int, workflows: int, steps: int, config: dict[str, Any]) -> tuple[float, float]:
    """(CPU seconds, virtual seconds) of one run of the workload under ``config``."""
    from benchmarks import pool_app
    from pynenc_wf_testing import WorkflowEnv

    options = {k: v for k, v in config.items() if k != "mixed"}
    started = time.process_time()
    with WorkflowEnv(seed=seed, **options) as env:
        env.use(pool_app.app)
        begin = env.now
        runs = []
        for index in range(workflows):
            urgent = config.get("mixed") and index % 2
            task = pool_app.chain_urgent if urgent else pool_app.chain
            runs.append(env.start(task, index, steps))
        for run in runs:
            run.result
        virtual = (env.now - begin).total_seconds()
    return time.process_time() - started, virtual


def measure(workflows: int, steps: int, rounds: int) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    for name, config in CONFIGS.items():
        run_once(0, min(workflows, 4), min(steps, 3), config)  # warm-up: imports, caches
        cpu: list[float] = []
        virtual = 0.0
        for round_no in range(rounds):
            seconds, virtual = run_once(round_no, workflows, steps, config)
            cpu.append(seconds)
        figures[name] = {"min_cpu_seconds": min(cpu), "virtual_seconds": virtual}
    reference = figures["no pool"]["min_cpu_seconds"] or 1e-9
    for data in figures.values():
        data["ratio"] = data["min_cpu_seconds"] / reference
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--quick", action="store_true", help="1 round of 4 x 3 (smoke)")
    parser.add_argument("--workflows", type=int, default=40)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    workflows, steps, rounds = args.workflows, args.steps, args.rounds
    if args.quick:
        workflows, steps, rounds = 4, 3, 1
    figures = measure(workflows, steps, rounds)
    if args.json:
        print(json.dumps({"workflows": workflows, "steps": steps, "rounds": rounds,
                          "configs": figures}, indent=2))
        return 0
    print(f"{workflows} workflows x {steps} steps, min CPU over {rounds} rounds")
    print(f"{'config':<12} {'CPU s':>8} {'ratio':>7} {'virtual s':>10}")
    for name, data in figures.items():
        print(
            f"{name:<12} {data['min_cpu_seconds']:>8.3f} {data['ratio']:>7.2f} "
            f"{data['virtual_seconds']:>10.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
