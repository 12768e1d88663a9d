"""Readable reports: the text workflow tree and the self-contained HTML page (pynenc_wf_testing/env/report.py)."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pynenc_wf_testing import WorkflowEnv
from pynenc_wf_testing.env._report_layout import _format_span
from pynenc_wf_testing.env.report import render_html, render_text
from tests import render_apps as ra

SVG = "{http://www.w3.org/2000/svg}"


@contextmanager
def order_with_retries_and_a_crash(seed: int = 11) -> Iterator[WorkflowEnv]:
    """order -> ship (sub-workflow); charge fails twice (injected), print_label retries once
    on its own, and the worker dies right after print_label's result is committed."""
    with WorkflowEnv(seed=seed) as env:
        env.fail(ra.charge, times=2, exc=ra.Transient)
        env.crash_after("print_label")
        run = env.start(ra.order, "book", 25)
        assert run.result == "sent-label-book/ddea"
        yield env


@contextmanager
def unfinished_courier() -> Iterator[WorkflowEnv]:
    """A workflow still waiting for its 4-hour child, one virtual hour in."""
    with WorkflowEnv(seed=11) as env:
        env.start(ra.courier, "lbl")
        env.advance(hours=1)
        yield env


# ---------------------------------------------------------------------------------- text


def test_text_tree_of_a_workflow_with_a_sub_workflow_retries_and_a_crash() -> None:
    with order_with_retries_and_a_crash() as env:
        text = render_text(env)
        steps = len(env.steps)

    assert text.splitlines() == [
        f"seed 11; {steps} steps, 1 crash, 11 task executions",
        "rerun: WorkflowEnv(seed=11) (in pytest: --wf-seed=11)",
        "virtual time: 2030-01-01T00:00:00+00:00 -> 2030-01-01T04:00:07+00:00 (+4:00:07)",
        "order#1 [c2c04fa9]                SUCCESS  +0:00:00..+4:00:07  2 runs: crashed, success",
        "|-- reserve#1 [53baa1b5]          SUCCESS  +0:00:00..+0:00:02  1 run",
        "|-- charge#1 [816dde90]           SUCCESS  +0:00:02..+0:00:05  3 runs: retry* x2, success",
        "`-- ship#1 [3c3c9dfc]             SUCCESS  +0:00:05..+4:00:07  2 runs: crashed, success",
        "    |-- print_label#1 [a8c88144]  SUCCESS  +0:00:05..+0:00:07  2 runs: retry, success",
        "    |-- x crash: crash_after('print_label#1') at print_label#1  +0:00:07",
        "    |     ~ recover: worker 2 took over at once  +0:00:07",
        "    `-- dispatch#1 [e85c4000]     SUCCESS  +0:00:07..+4:00:07  1 run",
        "legend: * injected failure (wf_env.fail); x worker crash, ~ recovery",
    ]
    assert all(len(line) <= 100 for line in text.splitlines())


def test_a_crash_before_a_workflow_step_shows_inside_that_workflow_with_its_restart() -> None:
    with WorkflowEnv(seed=11) as env:
        env.crash_before("uuid#1", restart_after=dt.timedelta(minutes=15))
        assert env.start(ra.order, "book", 25).result.startswith("sent-")
        lines = render_text(env).splitlines()

    tree = lines[3:]
    assert tree[0].startswith("order#1 [c2c04fa9]")
    assert tree[3].startswith("`-- ship#1 [3c3c9dfc]")
    # The crash is the sub-workflow's first child: uuid#1 is ship's own step, before any child.
    assert tree[4:7] == [
        (
            "    |-- x crash: crash_before('uuid#1', restart_after=timedelta(seconds=900)) "
            "at uuid#1  +0:00:05"
        ),
        "    |     ~ restart: worker 2 started  +0:15:05",
        "    |     ~ recover: pynenc's recovery tasks routed  +0:15:05",
    ]
    assert tree[7].startswith("    |-- print_label#1 [")
    assert "+0:15:05..+0:15:07  2 runs: retry, success" in tree[7]
    # pynenc's own recovery tasks ran on the restarted worker: top-level invocations.
    assert [line.split(" [")[0] for line in tree[9:11]] == [
        "recover_pending_invocations#1",
        "recover_running_invocations#1",
    ]


def test_an_unfinished_run_shows_open_intervals_and_what_it_waits_for() -> None:
    with unfinished_courier() as env:
        text = render_text(env)

    assert text.splitlines()[2:] == [
        "virtual time: 2030-01-01T00:00:00+00:00 -> 2030-01-01T01:00:00+00:00 (+1:00:00)",
        "courier#1 [f7a00fc3]       RUNNING  +0:00:00..open  1 run: running",
        "|   ! waits for the result of dispatch#1 [fe76de15] (status: running)",
        "`-- dispatch#1 [fe76de15]  RUNNING  +0:00:00..open  1 run: running",
        "legend: ! waits right now",
    ]


def test_an_empty_environment_says_so() -> None:
    with WorkflowEnv(seed=4) as env:
        assert render_text(env).splitlines() == [
            "seed 4; 0 steps, 0 crashes, 0 task executions",
            "rerun: WorkflowEnv(seed=4) (in pytest: --wf-seed=4)",
            "virtual time: 2030-01-01T00:00:00+00:00 -> 2030-01-01T00:00:00+00:00 (+0:00:00)",
            "(nothing ran in this environment yet)",
        ]


def test_the_same_seed_renders_the_same_bytes() -> None:
    def both() -> tuple[str, str]:
        with order_with_retries_and_a_crash() as env:
            return render_text(env), render_html(env, title="t")

    assert both() == both()


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (0, "0:00:00"),
        (7_000_000, "0:00:07"),
        (4 * 3600_000_000 + 7_000_000, "4:00:07"),
        (1_500_000, "0:00:01.5"),
        (27 * 86_400_000_000, "27d"),
        (2 * 86_400_000_000 + 3600_000_000 + 1, "2d 1:00:00.000001"),
    ],
)
def test_virtual_spans(micros: int, text: str) -> None:
    assert _format_span(micros) == text


# ---------------------------------------------------------------------------------- HTML


class _Balance(HTMLParser):
    """Every opened tag is closed, in order (void elements are written self-closed)."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.seen: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


HOSTILE_TITLE = "tests/test_x.py::test_y[<b>&'\"]"


@pytest.mark.parametrize(
    "scenario", [order_with_retries_and_a_crash, unfinished_courier, lambda: WorkflowEnv(seed=1)]
)
def test_html_is_well_formed_and_self_contained(scenario: object) -> None:
    with scenario() as env:  # type: ignore[operator]
        page = render_html(env, title=HOSTILE_TITLE)

    checker = _Balance()
    checker.feed(page)
    checker.close()
    assert checker.errors == []
    assert checker.stack == []
    ET.fromstring(page.split("\n", 1)[1])  # also well-formed XML (after the doctype)
    assert "<b>" not in page and "&lt;b&gt;&amp;&#x27;&quot;" in page
    assert "<script" not in page and "src=" not in page and "href=" not in page
    assert re.findall(r"https?://[^\"]+", page) in ([], ["http://www.w3.org/2000/svg"])


def test_html_holds_the_tree_the_timeline_and_the_steps() -> None:
    with order_with_retries_and_a_crash() as env:
        page = render_html(env, title="order report")
        text = render_text(env)
        step_names = [s.name for s in env.history]
        ledger = env.ledger

    root = ET.fromstring(page.split("\n", 1)[1])
    body_text = " ".join(root.itertext())
    assert "seed 11;" in body_text and "rerun: WorkflowEnv(seed=11)" in body_text
    # The tree: the same nodes as the text, nested (ship's children inside its <details>).
    for line in text.splitlines()[3:-1]:
        match = re.search(r"(\w+#\d+) \[(\w{8})\]", line)
        if match:
            assert f"{match.group(1)}</span></span> <code class=\"id\"" in page
            assert f"[{match.group(2)}]" in page
    details = [d for d in root.iter("details")]
    assert len(details) == 2  # order and ship have children
    ship = details[1]
    assert "print_label#1" in " ".join(ship.itertext())
    assert "crash_after('print_label#1') at print_label#1" in " ".join(ship.itertext())
    # The timeline: one labelled row per invocation, a bar per execution, one crash marker.
    svg = root.find(f".//{SVG}svg")
    assert svg is not None
    labels = [t.text for t in svg.iter(f"{SVG}text")]
    assert "order#1 [c2c04fa9]" in labels and "dispatch#1 [e85c4000]" in labels
    assert "crash 1" in labels
    bars = [r for r in svg.iter(f"{SVG}rect") if r.get("height") == "14"]
    assert len(bars) == len(ledger) == 11
    assert any("run 1: crashed" in (b.findtext(f"{SVG}title") or "") for b in bars)
    assert any(line.get("stroke") == "#d50000" for line in svg.iter(f"{SVG}line"))
    # The step list: every history entry, crash included.
    tables = list(root.iter("table"))
    steps_table = tables[0]
    rows = steps_table.findall("tr")[1:]
    assert [row.findall("td")[3].text for row in rows] == step_names
    assert any(row.get("class") == "crashrow" for row in rows)


# ---------------------------------------------------------------------------------- browser


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _png_rows(data: bytes, max_rows: int) -> tuple[int, int, int, list[bytes]]:
    """Width, height, bytes per pixel and the first ``max_rows`` unfiltered rows of an 8-bit
    RGB/RGBA, non-interlaced PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    pos, idat = 8, b""
    width = height = bpp = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunk = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"IEND":
            break
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    previous = bytes(stride)
    for y in range(min(height, max_rows)):
        start = y * (stride + 1)
        filt, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if filt == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif filt == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        elif filt == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif filt == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = previous[i]
                c = previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        previous = bytes(line)
    return width, height, bpp, rows


def test_the_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip(
            "no Chromium/Chrome binary on PATH (looked for chromium, chromium-browser, "
            "google-chrome): install it (Debian: apt-get install -y chromium) to check the "
            "HTML report in a real browser"
        )
    with order_with_retries_and_a_crash() as env:
        page = render_html(env, title="tests/test_render.py::order")
    html_path = tmp_path / "report.html"
    html_path.write_text(page, encoding="utf-8")
    png = tmp_path / "report.png"
    completed = subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={png}", "--window-size=1200,900", html_path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert png.exists(), f"no screenshot (exit {completed.returncode}): {completed.stderr[-2000:]}"
    data = png.read_bytes()
    assert len(data) > 20_000  # a blank page compresses to a few hundred bytes

    width, height, bpp, rows = _png_rows(data, max_rows=640)
    assert (width, height) == (1200, 900)
    pixels = {row[i : i + 3] for row in rows for i in range(0, len(row), bpp)}
    assert len(pixels) > 200  # text, badges, bars: far from a single-colour image
    # The page's own colours were painted: success badges and bars, the red crash marker.
    assert bytes((0x2E, 0x7D, 0x32)) in pixels
    assert bytes((0xD5, 0x00, 0x00)) in pixels
