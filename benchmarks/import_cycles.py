"""How many modules of pynenc_wf_testing sit in an import cycle, and which cycles.

Counts the same imports as ``lint-imports`` (the contracts in pyproject.toml): every import
statement grimp finds, module-level, function-level and under ``if TYPE_CHECKING:`` alike. A
module is in a cycle when it belongs to a strongly connected component of more than one module
of the import graph (the graph holds this package and the pytest plugin, so a cycle through the
plugin counts too). Package ``__init__`` modules are modules like any other.

Run ``make cycles`` (or ``.venv/bin/python benchmarks/import_cycles.py``). ``--max N`` exits 1
when more than N modules are in a cycle, for use as a ratchet in CI.
See docs/architecture.md for the layers that, once kept, leave no cycle.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

import grimp

PACKAGE = "pynenc_wf_testing"
PACKAGES = (PACKAGE, "pytest_pynenc_wf")


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm (iterative) over the internal import graph; components sorted."""
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            recurse = False
            targets = edges[node]
            while i < len(targets):
                nxt = targets[i]
                i += 1
                if nxt not in index:
                    work.append((node, i))
                    work.append((nxt, 0))
                    recurse = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if recurse:
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return sorted(components, key=lambda c: (-len(c), c))


def _lines(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    details = graph.get_import_details(importer=importer, imported=imported)
    return ", ".join(
        f"l.{d['line_number']}" for d in sorted(details, key=lambda d: d["line_number"])
    )


def shortest_cycle(graph: grimp.ImportGraph, module: str, members: Iterable[str]) -> list[str]:
    """One shortest cycle through ``module`` inside its component."""
    best: list[str] | None = None
    inside = set(members)
    for nxt in sorted(graph.find_modules_directly_imported_by(module) & inside):
        back = graph.find_shortest_chain(importer=nxt, imported=module)
        if back is not None and (best is None or len(back) + 1 < len(best)):
            best = [module, *back]
    return best or [module]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=None, help="exit 1 above this many modules")
    args = parser.parse_args(argv)

    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=False, cache_dir=None)
    ours = sorted(m for m in graph.modules if m == PACKAGE or m.startswith(PACKAGE + "."))
    cyclic = [c for c in strongly_connected(graph) if len(c) > 1]
    in_cycle = sorted(m for c in cyclic for m in c if m in ours)

    print(f"{len(in_cycle)} of {len(ours)} modules of {PACKAGE} sit in an import cycle")
    print("(function-level and TYPE_CHECKING imports counted)")
    for n, component in enumerate(cyclic, 1):
        print(f"\ncycle group {n}: {len(component)} modules")
        for member in component:
            print(f"  {member}")
        print("  imports inside the group:")
        for importer in component:
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if imported in component:
                    print(f"    {importer} -> {imported} ({_lines(graph, importer, imported)})")
        print("  a shortest cycle through the first member:")
        print("    " + " -> ".join(shortest_cycle(graph, component[0], component)))
    if args.max is not None and len(in_cycle) > args.max:
        print(f"\nerror: {len(in_cycle)} modules in a cycle, more than --max {args.max}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
