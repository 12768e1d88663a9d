"""Every Python block of README.md and docs/*.md runs as written.

The blocks are read from the docs themselves, so an edited block is tested as edited. Each
block has an entry in ``EXAMPLES`` (keyed by its file and first line) saying how it runs:

- ``run``: executed as a module, after ``prelude`` (the names the surrounding prose gives it,
  e.g. the user's ``tasks`` module); with ``env=NAME`` inside an open ``WorkflowEnv`` bound to
  NAME (a block written for a test body, or a client call the prose runs against a store).
- ``test``: a block of ``def test_...(wf_env)`` functions; each is called with a fresh
  environment, as the plugin would.
- ``body``: lines of a workflow body (they use ``root``): wrapped in a workflow of the user's
  app and run to its end.
- ``fragment``: lines that cannot run alone (``why`` says why): compiled only.

Every block, fragments included, must compile and its ``from pynenc_wf_testing... import``
names must exist. ``after`` holds checks of what the prose around the block promises. The
user's module is tests/docs_shop.py, importable under the names the docs use (``myshop``,
``myshop.tasks``).
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib
import itertools
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pynenc_wf_testing import WorkflowEnv
from tests import docs_shop

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
START = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
_BLOCK = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.S | re.M)  # fences may be indented


@dataclass(frozen=True)
class Block:
    path: str  # relative to the repository
    line: int  # of the opening fence
    source: str

    @property
    def first_line(self) -> str:
        return self.source.splitlines()[0].strip()

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Example:
    kind: str  # "run", "test", "body" or "fragment"
    prelude: str = ""
    after: str = ""
    env: str | None = None  # run: the name of an open WorkflowEnv in the namespace
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    args: tuple[tuple[str, Any], ...] = ()  # body: the workflow's parameters and values
    name: str = "doc_body"  # body: the workflow's name (a block may name it)
    raises: type[BaseException] | None = None  # run: the block itself must raise this
    why: str = ""  # fragment: why it cannot run alone
    redis: bool = False  # run: the block's redis://127.0.0.1:6379/0 is a real server of ours


def python_blocks() -> list[Block]:
    blocks = []
    for path in DOC_FILES:
        text = path.read_text()
        for match in _BLOCK.finditer(text):
            if match.group(2) == "python":
                line = text[: match.start()].count("\n") + 1
                source = textwrap.dedent(match.group(3))
                blocks.append(Block(str(path.relative_to(ROOT)), line, source))
    return blocks


SHOP = "from myshop import tasks\nfrom myshop.tasks import Order\n"
FAILED_ORDER_1 = """
from myshop.tasks import app, charge_payment, fulfill
failed = env.start_workflow(fulfill, "o-1", workflow_id="order-1")
env.run_until_idle()
assert failed.done and failed.status.name == "FAILED"
"""

EXAMPLES: dict[tuple[str, str], Example] = {
    # ------------------------------------------------------------------------ README.md
    ("README.md", "# tests/test_orders.py of your project; your app is a module-level pynenc app"):
        Example("test"),
    ("README.md", "from pynenc_wf_testing import WorkflowEnv"): Example(
        "run", prelude=SHOP,
        after="assert printed().startswith(\"FulfilmentResult(order_id='o-1', status='fulfilled'\")",
    ),
    ("README.md", "from datetime import timedelta"): Example("test", prelude=SHOP),
    ("README.md", "report = wf_env.check_crash_safety("): Example(
        "run", env="wf_env", prelude=SHOP + "from myshop.tasks import gateway\n",
        after="assert report.ok and len(report.explored) >= 2",
    ),
    ("README.md", "from datetime import timedelta\nfrom pynenc_wf_testing import Advance, Cancel, Signal"):
        Example(
            "run", env="wf_env", prelude=SHOP + "from myshop.tasks import documents\n",
            after="assert report.ok and len(report.explored) > 3",
        ),
    ("README.md", "with WorkflowEnv(seed=3) as env:"): Example(
        "run",
        prelude="from pynenc_wf_testing import WorkflowEnv\n"
        "from myshop.tasks import fulfill_order, other_workflow\n",
        after="assert report.ok and report.golden_outcome",
    ),
    ("README.md", "from pynenc.builder import PynencBuilder"): Example(
        "run", prelude="from datetime import timedelta\nfrom myshop.tasks import send_reminder\n",
        after="assert app.app_id == 'shop' and subscription.func.__name__ == 'subscription'",
    ),
    ("README.md", "from pynenc_wf_testing.engine import describe_workflow, signal_workflow, start_workflow, workflow_result"):
        Example(
            "run", env="env",
            prelude="from datetime import timedelta\nfrom myshop.tasks import app, send_reminder\n"
            "@app.workflow\n"
            "def subscription(account: str) -> str:\n"
            "    root = subscription.wf.root\n"
            "    root.sleep(timedelta(days=27))\n"
            "    root.execute_task(send_reminder, account).result\n"
            "    paid = root.wait_for_signal('payment', timeout=timedelta(days=3), default=None)\n"
            "    return 'paid' if paid else 'lapsed'\n",
            after="assert info.workflow_id == 'acct-1' and not info.finished\n"
            "env.advance(days=27)\n"
            "assert workflow_result(app, 'acct-1') == 'paid'\n"
            "assert describe_workflow(app, 'acct-1').finished",
        ),
    ("README.md", "with root.saga() as saga:"): Example(
        "body", args=(("order", "o-1"),),
        prelude="""
from myshop.tasks import app
class CarrierDown(Exception):
    pass
@app.task
def reserve(order: str) -> str:
    return order
@app.task
def release(order: str) -> str:
    return order
@app.task
def bill(order: str) -> str:
    return order
@app.task
def refund(order: str) -> str:
    raise RuntimeError("refund service down")
@app.task
def ship(order: str) -> str:
    raise CarrierDown("no courier today")
""",
        after="""
with pytest.raises(CarrierDown) as caught:
    run.result
assert len(caught.value.__notes__) == 1
assert caught.value.__notes__[0].startswith("compensation refund('o-1') failed: ")
assert env.executions(release) == 1 and env.executions(refund) == 1
""",
    ),
    ("README.md", "@app.workflow"): Example(
        "run", env="env",
        prelude="from datetime import timedelta\nfrom myshop.tasks import app, charge\n"
        "from pynenc_wf_testing.engine import describe_workflow, start_workflow\n",
        after="""
assert len(describe_workflow(app, "acct-1").runs) == 1
env.advance(days=61)
assert len(describe_workflow(app, "acct-1").runs) == 3
assert env.executions(charge) == 3
""",
    ),
    ("README.md", "from pynenc_wf_testing.engine import Keyring"): Example(
        "run",
        prelude="from pynenc import PynencBuilder\n"
        "from pynenc_wf_testing.engine import Keyring\n"
        "key = lambda: Keyring.encode_key(Keyring.generate_key())  # as the block's comment says\n"
        "monkeypatch.setenv('PYNENC_WF_KEYS', f'k2={key()},k1={key()}')\n",
        after="assert app.app_id == 'shop'\n"
        "assert app.serializer.serialize('o-1').startswith('pynenc-wf-enc:1:k2:')",
    ),
    ("README.md", "from pynenc_wf_testing.engine import ParentClosePolicy"): Example(
        "body", args=(("shop", "acme"),),
        prelude="from myshop.tasks import app, rebuild_index\n",
        after="assert run.result is None\nenv.run_until_idle()\n"
        "assert env.executions(rebuild_index) == 1  # the abandoned child ran on",
    ),
    ("README.md", "from pynenc_wf_testing.engine import ("): Example(
        "run", env="env", prelude=FAILED_ORDER_1,
        after="""
from pynenc_wf_testing.engine import workflow_result
assert describe_workflow(app, "order-1").rerun_of == failed.invocation_id
assert run.invocation_id != failed.invocation_id
env.run_until_idle()
assert workflow_result(app, "order-1") == "shipped o-1"
assert env.executions(charge_payment) == 2
""",
    ),
    ("README.md", "def test_rerun_from_the_failed_step(wf_env):"): Example(
        "test", prelude="from myshop import tasks as shop\n"
    ),
    ("README.md", "with WorkflowEnv(seed=3, workers=2, slots=1, slow_workers={2: 3.0}) as env:"):
        Example(
            "run",
            prelude="from datetime import timedelta\nfrom pynenc_wf_testing import WorkflowEnv\n"
            "from myshop.tasks import work\n",
        ),
    # ------------------------------------------------------------------------ docs/backends.md
    ("docs/backends.md", "from pynenc_wf_testing import WorkflowEnv"): Example("run", redis=True),
    ("docs/backends.md", "@pytest.mark.wf(backend=\"sqlite\")"): Example("test", prelude="import pytest\n"),
    ("docs/backends.md", "# rerun the failing case with a kept database (same seed: same run)"): Example(
        "run", prelude=SHOP + "from pynenc_wf_testing import WorkflowEnv\n",
        after="assert printed().strip() == 'wf-runs/store-1.db' and Path('wf-runs/store-1.db').is_file()",
    ),
    # ------------------------------------------------------------------------ docs/engine.md
    ("docs/engine.md", "slow = root.execute_task(finish_at, \"slow\", ten_hours_later)"): Example(
        "body",
        args=(
            ("ten_hours_later", START + dt.timedelta(hours=10)),
            ("one_hour_later", START + dt.timedelta(hours=1)),
        ),
        prelude="""
import datetime as dt
import time
from datetime import timedelta
from myshop.tasks import app
@app.task
def finish_at(name: str, when: dt.datetime) -> str:
    time.sleep((when - dt.datetime.now(dt.UTC)).total_seconds())
    return name
""",
        after="assert run.result is None and env.now == START + timedelta(hours=12)",
    ),
    ("docs/engine.md", "from datetime import timedelta"): Example(
        "run", after="assert app.app_id == 'billing'"
    ),
    ("docs/engine.md", "app = PynencBuilder().enable_workflows(workflow_max_retries=1).app_id(\"billing\").build()"):
        Example("run", prelude="from pynenc import PynencBuilder\n", after="assert app.app_id == 'billing'"),
    ("docs/engine.md", "from pynenc import Pynenc"): Example("run", after="assert app.app_id == 'billing'"),
    ("docs/engine.md", "@app.workflow\ndef trial(account_id: str) -> str:"): Example(
        "run", env="env",
        prelude="from datetime import timedelta\nfrom myshop.tasks import app, send_reminder\n",
        after="""
run = env.start(trial, "acct-1")
env.advance(days=27)
assert env.executions(send_reminder) == 1 and not run.done
env.advance(days=3)
assert run.done and run.result is None
""",
    ),
    ("docs/engine.md", "now = root.now()                          # recorded on first execution, replayed after"):
        Example(
            "body", prelude="import secrets\nfrom myshop.tasks import app\n",
            after="assert run.result is None\nassert {'now#1', 'side_effect#1'} <= set(env.steps)",
        ),
    ("docs/engine.md", "payment = root.wait_for_signal(\"payment\", timeout=timedelta(days=7), default=None)"):
        Example(
            "body", prelude="from datetime import timedelta\nfrom myshop.tasks import app\n",
            after="assert run.result is None and env.now == START + timedelta(days=7)",
        ),
    ("docs/engine.md", "from pynenc_wf_testing.engine import signal_workflow"): Example(
        "run", env="env",
        prelude="from myshop.tasks import app, subscription_workflow\n"
        "run = env.start(subscription_workflow, 'acct-1')\n"
        "workflow_id_or_invocation = run.workflow_id\n",
        after="assert signal_workflow(app, run.invocation_id, 'payment', {'ref': 'pay_2'}) == 2",
    ),
    ("docs/engine.md", "progress.wf.save_state({\"phase\": \"awaiting payment\", \"invoice\": invoice_id})   # any member task"):
        Example("fragment", why="its first line belongs in a task body, the rest in a client"),
    ("docs/engine.md", "child = root.execute_task(render_pdf, invoice_id)"): Example(
        "fragment", why="five independent wait forms, each with its own tasks"
    ),
    ("docs/engine.md", "from pynenc_wf_testing.engine import RetryPolicy, set_retry_policy"): Example(
        "body", args=(("account_id", "acct-1"),),
        prelude="""
from datetime import timedelta
from myshop.tasks import app
class InvoicingUnavailable(Exception):
    pass
class InvalidAccount(Exception):
    pass
@app.task
def issue_invoice(account_id: str) -> str:
    return f"invoice for {account_id}"
""",
        after="assert run.result is None\nassert env.executions(issue_invoice) == 1",
    ),
    ("docs/engine.md", "root.halt(\"needs approval\")           # parks the workflow durably; a resumed run goes past it"):
        Example("fragment", why="two alternatives; the second raises by design"),
    ("docs/engine.md", "from pynenc_wf_testing.engine import resume_workflow"): Example(
        "run", env="env",
        prelude="""
from myshop.tasks import app
@app.workflow
def gate(doc: str) -> str:
    gate.wf.root.halt("needs approval")
    return f"{doc} released"
run = env.start(gate, "d-1")
env.run_until_idle()
assert not run.done
workflow = run.workflow_id
""",
        after="assert run.result == 'd-1 released'",
    ),
    ("docs/engine.md", "with root.saga() as saga:"): Example(
        "body", args=(("trip", "t-1"),),
        prelude="""
from myshop.tasks import app
@app.task
def book_flight(trip: str) -> str:
    return f"flight {trip}"
@app.task
def cancel_flight(flight: str) -> None:
    pass
@app.task
def book_hotel(trip: str) -> str:
    return f"hotel {trip}"
@app.task
def cancel_hotel(hotel: str) -> None:
    pass
""",
        after="""
env.run_until_idle()
assert not run.done
env.cancel(run, "customer left")
from pynenc_wf_testing.engine import WorkflowCancelled
with pytest.raises(WorkflowCancelled):
    run.result
assert env.executions(cancel_flight) == 1 and env.executions(cancel_hotel) == 1
""",
    ),
    ("docs/engine.md", "from pynenc_wf_testing.engine import cancel_workflow, start_workflow"): Example(
        "run", env="env",
        prelude="""
from datetime import timedelta
from myshop.tasks import app, subscription_workflow as trip_workflow
run = env.start(trip_workflow, "acct-0")
env.run_until_idle()
workflow = run.workflow_id
""",
        after="""
from pynenc_wf_testing.engine import WorkflowCancelled, WorkflowTimeout, workflow_result
with pytest.raises(WorkflowCancelled):
    run.result
env.advance(days=31)
with pytest.raises(WorkflowTimeout):
    workflow_result(app, env.calls(trip_workflow)[-1].invocation_id)
""",
    ),
    ("docs/engine.md", "try:"): Example(
        "fragment", why="the end of the saga example above it: `invocation` and `Fatal` are its"
    ),
    ("docs/engine.md", "run = wf_env.start(blocked_on_child)      # its child runs for an hour"): Example(
        "run", env="wf_env", prelude="from myshop.tasks import blocked_on_child\n",
        raises=importlib.import_module("pynenc_wf_testing.engine").WorkflowCancelled,
        after="assert wf_env.now == START + dt.timedelta(minutes=10)",
    ),
    ("docs/engine.md", "from pynenc_wf_testing.engine import ParentClosePolicy"): Example(
        "body", args=(("shop", "acme"),), prelude="from myshop.tasks import app, rebuild_index\n",
        after="assert run.result is None",
    ),
    ("docs/engine.md", "run = start_workflow(subscription_workflow, \"acct-1\", workflow_id=\"acct-1\")                     # reuse"):
        Example("fragment", why="alternatives: the last two lines raise by design"),
    ("docs/engine.md", "from pynenc_wf_testing.engine import ("): Example(
        "run", env="env",
        prelude="from myshop.tasks import app, subscription_workflow\n"
        "from pynenc_wf_testing.engine import start_workflow\n"
        "start_workflow(subscription_workflow, 'acct-1', workflow_id='acct-1')\n"
        "env.run_until_idle()\n",
        after="assert info.workflow_id == 'acct-1' and not info.finished and info.runs",
    ),
    ("docs/engine.md", "@app.workflow\ndef renewal(account: str, month: int = 1) -> None:"): Example(
        "run", env="env", prelude="from datetime import timedelta\nfrom myshop.tasks import app, charge\n",
        after="""
from pynenc_wf_testing.engine import ContinuedAsNew, describe_workflow, start_workflow
start_workflow(renewal, "acct-1", workflow_id="acct-1")
env.advance(days=31)
assert len(describe_workflow(app, "acct-1").runs) == 2
""",
    ),
    ("docs/engine.md", "from pynenc_wf_testing.engine import (\n    describe_workflow, invalidate_result, rerun_workflow, workflow_steps,"):
        Example(
            "run", env="env", prelude=FAILED_ORDER_1,
            after="env.run_until_idle()\nassert env.executions(charge_payment) == 3",
        ),
    ("docs/engine.md", "def test_rerun_after_the_carrier_is_back(wf_env):"): Example(
        "test", prelude="from myshop import tasks as shop\n"
    ),
    ("docs/engine.md", "if root.patched(\"add-audit\"):"): Example(
        "body", args=(("order", "o-1"),),
        prelude="from myshop.tasks import app\n@app.task\ndef audit(order: str) -> str:\n    return order\n",
        after="assert run.result is None and env.executions(audit) == 1",
    ),
    # ------------------------------------------------------------------------ docs/history-format.md
    ("docs/history-format.md", "from pynenc_wf_testing import Replayer"): Example(
        "run",
        prelude="""
import json, os
from pynenc_wf_testing import WorkflowEnv
from myshop.tasks import app, other_workflow
with WorkflowEnv(seed=1) as recording:
    recording.start(other_workflow, "x").result
    os.makedirs("histories")
    Path("histories/checkout.json").write_text(recording.history_json())
doc = json.loads(Path("histories/checkout.json").read_text())
""",
        after="assert result.ok and result.error is None",
    ),
    ("docs/history-format.md", "amount = 12 if checkout.wf.root.patched(\"new-price\") else 10"): Example(
        "body", name="checkout", prelude="from myshop.tasks import app\n",
        after="assert run.result is None and 'patch:new-price' in env.steps",
    ),
    # ------------------------------------------------------------------------ docs/security.md
    ("docs/security.md", "from pynenc import PynencBuilder"): Example(
        "run",
        prelude="from pynenc_wf_testing.engine import Keyring\n"
        "monkeypatch.setenv('PYNENC_WF_KEYS', 'k1=' + Keyring.encode_key(Keyring.generate_key()))\n",
        after="assert app.app_id == 'billing'",
    ),
    ("docs/security.md", "# before: PYNENC_WF_KEYS=\"k1=<old>\""): Example(
        "run",
        prelude="from pynenc_wf_testing.engine import Keyring\n"
        "new, old = Keyring.generate_key(), Keyring.generate_key()\n",
    ),
    # ------------------------------------------------------------------------ docs/workers.md
    ("docs/workers.md", "import datetime as dt"): Example(
        "run", prelude="from myshop.tasks import nightly_report\n",
        after="assert results == [f'report {day}' for day in range(10)]\n"
        "assert printed().count('nightly_report') >= 10",
    ),
    ("docs/workers.md", "env.crash_worker(1, after=dt.timedelta(minutes=1))                   # down for good"):
        Example(
            "run", env="env", env_kwargs=(("workers", 2),),
            prelude="from myshop.tasks import work\nruns = [env.start(work, f'job-{i}') for i in range(3)]\n",
            after="env.advance(minutes=2)\nassert env.workers_down == [1, 2]\n"
            "assert [run.result for run in runs] == ['done job-0', 'done job-1', 'done job-2']\n"
            "assert env.workers_down == [1]",
        ),
}


def entry_for(block: Block) -> tuple[tuple[str, str], Example] | None:
    """The entry whose key is the block's file and its first line(s), the longest that matches."""
    found = [
        (key, example)
        for key, example in EXAMPLES.items()
        if key[0] == block.path and block.source.startswith(key[1])
    ]
    return max(found, key=lambda item: len(item[0][1]), default=None)


BLOCKS = python_blocks()
_counter = itertools.count()


def test_every_block_has_an_entry_and_every_entry_a_block() -> None:
    missing = [b.where + ": " + b.first_line for b in BLOCKS if entry_for(b) is None]
    assert not missing, (
        f"these Python blocks of the docs are not in EXAMPLES of {Path(__file__).name}: "
        f"{missing}; add an entry saying how each runs (or why it is a fragment)"
    )
    used = {entry[0] for b in BLOCKS if (entry := entry_for(b)) is not None}
    stale = [key for key in EXAMPLES if key not in used]
    assert not stale, f"entries for blocks no longer in the docs: {stale}"


def test_the_docs_have_python_blocks_to_check() -> None:
    assert len(BLOCKS) >= 40
    assert sum(1 for b in BLOCKS if b.path == "README.md") >= 15


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_block_compiles_and_its_imports_exist(block: Block) -> None:
    tree = ast.parse(block.source, filename=block.where)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
            "pynenc", "pynenc_wf_testing",
        ):
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                assert hasattr(module, alias.name), f"{block.where}: {node.module}.{alias.name}"


def _fresh_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A module registered in sys.modules: pynenc finds the tasks a block defines by import."""
    module = types.ModuleType(f"docs_example_{next(_counter)}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


def _exec(source: str, namespace: dict[str, Any], where: str) -> None:
    exec(compile(source, where, "exec"), namespace)  # the docs' own code


def _wrap_body(block: Block, example: Example) -> str:
    params = ", ".join(name for name, _ in example.args)
    return (
        f"@app.workflow\ndef {example.name}({params}):\n"
        f"    root = {example.name}.wf.root\n" + textwrap.indent(block.source, "    ")
    )


@pytest.fixture
def as_the_docs_import_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``from myshop import tasks`` finds tests/docs_shop.py; files land in tmp_path."""
    package = types.ModuleType("myshop")
    package.tasks = docs_shop  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "myshop", package)
    monkeypatch.setitem(sys.modules, "myshop.tasks", docs_shop)
    monkeypatch.chdir(tmp_path)
    docs_shop.reset()


@pytest.fixture
def doc_redis_url(tmp_path: Path) -> Iterator[str]:
    """The CI's server (PYNENC_WF_REDIS_URL), else a redis-server of our own, else skip."""
    pytest.importorskip("redis")
    url = os.environ.get("PYNENC_WF_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no Redis: set PYNENC_WF_REDIS_URL or install redis-server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    import redis

    try:
        client = redis.Redis(port=port)
        for _ in range(400):  # up to 20 s of 50 ms tries: the server is starting
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                threading.Event().wait(0.05)
        else:
            pytest.fail(f"redis-server on port {port} did not answer")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


RUNNABLE = [b for b in BLOCKS if (e := entry_for(b)) is not None and e[1].kind != "fragment"]


@pytest.mark.usefixtures("as_the_docs_import_it")
@pytest.mark.parametrize("block", RUNNABLE, ids=[b.where for b in RUNNABLE])
def test_block_runs_as_written(
    block: Block,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    found = entry_for(block)
    assert found is not None
    example = found[1]
    if example.redis:
        url = request.getfixturevalue("doc_redis_url")
        block = Block(block.path, block.line, block.source.replace("redis://127.0.0.1:6379/0", url))
    module = _fresh_module(monkeypatch)
    namespace = module.__dict__
    namespace.update(
        pytest=pytest, Path=Path, dt=dt, START=START, monkeypatch=monkeypatch,
        printed=lambda: capsys.readouterr().out,
    )
    where = block.where
    if example.kind == "run" and example.env is None:
        _exec(example.prelude, namespace, f"{where} (prelude)")
        _run_block(block, example, namespace)
        _exec(example.after, namespace, f"{where} (after)")
    elif example.kind == "run":
        with WorkflowEnv(seed=1, **dict(example.env_kwargs)) as env:
            namespace[example.env] = env
            _exec(example.prelude, namespace, f"{where} (prelude)")
            _run_block(block, example, namespace)
            _exec(example.after, namespace, f"{where} (after)")
    elif example.kind == "test":
        _exec(example.prelude, namespace, f"{where} (prelude)")
        before = set(namespace)
        _exec(block.source, namespace, where)
        tests = sorted(n for n in namespace if n.startswith("test_") and n not in before)
        assert tests, f"{where} defines no test"
        for name in tests:
            docs_shop.reset()
            with WorkflowEnv(seed=1) as wf_env:
                namespace[name](wf_env)
    else:
        assert example.kind == "body", example.kind
        _exec(example.prelude, namespace, f"{where} (prelude)")
        _exec(_wrap_body(block, example), namespace, where)
        with WorkflowEnv(seed=1) as env:
            namespace["env"] = env
            namespace["run"] = env.start(namespace[example.name], *(v for _, v in example.args))
            _exec(example.after, namespace, f"{where} (after)")


def _run_block(block: Block, example: Example, namespace: dict[str, Any]) -> None:
    if example.raises is None:
        _exec(block.source, namespace, block.where)
        return
    with pytest.raises(example.raises):
        _exec(block.source, namespace, block.where)
