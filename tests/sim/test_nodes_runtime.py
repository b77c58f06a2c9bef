"""The sim's container runtime on its own: real local processes, exit codes, signals, stop."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from kgahp_sim.runtime import LocalProcess, ProcessSpec, ScriptedProcess, StartError


def _spec(tmp_path: Path, script: str) -> ProcessSpec:
    return ProcessSpec(argv=["sh", "-c", script], env={"PATH": os.environ["PATH"], "X": "42"},
                       cwd=str(tmp_path), log_path=tmp_path / "logs" / "main.log")


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_exit_code_env_cwd_and_combined_log(tmp_path: Path) -> None:
    async def scenario() -> int:
        process = await LocalProcess.start(_spec(tmp_path, "echo out $X; echo err >&2; pwd; "
                                                           "read line || echo no-stdin; exit 7"))
        return await process.wait()

    assert _run(scenario()) == 7
    assert (tmp_path / "logs" / "main.log").read_text().splitlines() == \
        ["out 42", "err", str(tmp_path), "no-stdin"]


def test_death_by_signal_is_128_plus_signal(tmp_path: Path) -> None:
    async def scenario() -> int:
        return await (await LocalProcess.start(_spec(tmp_path, "kill -9 $$"))).wait()

    assert _run(scenario()) == 137


def test_stop_sends_sigterm_to_the_whole_group(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, float]:
        process = await LocalProcess.start(_spec(tmp_path, "sleep 30 & wait"))
        await asyncio.sleep(0.1)
        began = time.monotonic()
        return await process.stop(5), time.monotonic() - began

    code, took = _run(scenario())
    assert code == 143 and took < 2


def test_stop_escalates_to_sigkill_after_grace(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, float]:
        process = await LocalProcess.start(_spec(tmp_path, "trap '' TERM; sleep 30 & wait; "
                                                           "sleep 30"))
        await asyncio.sleep(0.2)
        began = time.monotonic()
        return await process.stop(0.5), time.monotonic() - began

    code, took = _run(scenario())
    assert code == 137 and 0.4 < took < 3


def test_missing_program_is_a_start_error(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "")
    spec.argv = ["no-such-program-kgahp"]

    async def scenario() -> None:
        await LocalProcess.start(spec)

    with pytest.raises(StartError) as error:
        _run(scenario())
    assert 'exec: "no-such-program-kgahp": executable file not found in $PATH' in str(error.value)


@pytest.mark.parametrize("ignores_sigterm, expected", [(False, 143), (True, 137)])
def test_scripted_process_signals(ignores_sigterm: bool, expected: int) -> None:
    async def scenario() -> int:
        process = ScriptedProcess(0, None, ignores_sigterm)
        return await process.stop(0.1)

    assert _run(scenario()) == expected


def test_scripted_process_exits_on_time() -> None:
    async def scenario() -> tuple[int, float]:
        began = time.monotonic()
        code = await ScriptedProcess(3, 0.2).wait()
        return code, time.monotonic() - began

    code, took = _run(scenario())
    assert code == 3 and 0.15 < took < 1


def test_stop_with_zero_grace_kills_at_once(tmp_path: Path) -> None:
    async def scenario() -> int:
        process = await LocalProcess.start(_spec(tmp_path, "sleep 30"))
        return await process.stop(0)

    assert _run(scenario()) == 137
