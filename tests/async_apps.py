"""Async pynenc tasks (pynenc runs each in its own asyncio.run)."""

from __future__ import annotations

import asyncio
import datetime as dt

from pynenc import Pynenc

app = Pynenc(config_values={"app_id": "async-apps"})


@app.task
async def nap(hours: int) -> str:
    await asyncio.sleep(hours * 3600)
    return dt.datetime.now(dt.UTC).isoformat()


@app.workflow
def naps(hours: list[int]) -> list[str]:
    invocations = [naps.wf.root.execute_task(nap, h) for h in hours]
    return [invocation.result for invocation in invocations]
