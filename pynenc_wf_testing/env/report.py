"""Readable reports of a simulation or a store: the workflow tree as text, and a self-contained
HTML page.

Both draw a :class:`~pynenc_wf_testing.env.report_model.ReportData`: of an open environment
(``report_data(env)``: every invocation the simulation saw, its status asked of pynenc's
orchestrator, its executions from the side-effect ledger) or read from a production store or a
history file (``env.report_sources``). From it ``_report_layout`` builds the tree: nested
workflow -> sub-workflows -> children, each with its start, end and runs, the worker crashes
placed where they happened, and the links between runs (a continue-as-new chain, a re-run);
``_report_text`` and ``_report_html`` draw it; this module is their public home. Output is deterministic: the same seed and code (or
the same store) give byte-identical text and HTML (no ``id()``, no wall clock, ordering by
first appearance in the history).

Symbols of the text tree (plain ASCII so that any terminal and CI log shows them)::

    |-- `--   tree branches
    *         an injected failure (wf_env.fail) in the list of runs
    x         a worker crash, with the fault that caused it
    ~         what followed a crash (worker restart, pynenc's recovery)
    !         what an unfinished invocation waits for right now

Times are relative to the start (``+H:MM:SS``, ``+Nd HH:MM:SS`` past a day): of the
environment's virtual clock, or of the first record of a store (real time).
"""

from __future__ import annotations

from pynenc_wf_testing.env._report_html import render_html
from pynenc_wf_testing.env._report_text import render_text

__all__ = ["render_html", "render_text"]
