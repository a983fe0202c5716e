"""Executors, models and helpers of the acceptance tests (issues 12 and 14), at module level
so worker processes import them by reference."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from support.cli import cli_env


async def async_echo(task, session, context):
    """An ``async def`` executor: awaits, then answers."""
    await asyncio.sleep(0.01)
    return f"async did: {task}"


class AsyncModel:
    """A model whose ``generate`` is a coroutine function (as most SDKs are)."""

    label = "async-model"

    async def generate(self, prompt: str) -> str:
        await asyncio.sleep(0.01)
        return "async model answer"


def run_cli(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m mission_widgets ARGS`` as a user types it (never the default store)."""
    return subprocess.run(
        [sys.executable, "-m", "mission_widgets", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(tmp_path),
    )
