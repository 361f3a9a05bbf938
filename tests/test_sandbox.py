"""chattasks.sandbox: running programs, reading their results, limits, parallelism, isolation."""

from __future__ import annotations

import glob
import os
import random
import subprocess
import sys
import tempfile
import time

import pytest
from host_processes import processes_mentioning

from chattasks.errors import SandboxError, SandboxUnavailable
from chattasks.sandbox import (
    Isolation,
    RunSummary,
    SandboxPool,
    SandboxResult,
    Status,
    resolve_isolation,
    run_program,
)
from chattasks.sandbox.isolation import works

pytestmark = pytest.mark.skipif(
    not works(Isolation.BWRAP, sys.executable), reason="bubblewrap does not work here"
)


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(2) as pool:
        yield pool


# ----- one program ---------------------------------------------------------------------------


def test_a_program_that_runs_to_its_end_passes_and_keeps_its_output():
    result = run_program("import sys\nprint('out')\nprint('err', file=sys.stderr)")
    assert result.status is Status.PASSED and result.passed
    assert (result.stdout, result.stderr) == ("out\n", "err\n")
    assert result.returncode == 0 and result.error is None
    assert result.isolation is Isolation.BWRAP
    assert 0 < result.duration < 5


def test_a_program_that_raises_fails_with_its_traceback(pool):
    result = pool.run("def f():\n    return 1 / 0\nf()")
    assert result.status is Status.FAILED and not result.passed
    assert result.error == "ZeroDivisionError: division by zero"
    assert "line 2, in f" in result.stderr and "ZeroDivisionError" in result.stderr
    assert "run_child" not in result.stderr  # the harness's own frame is not shown
    assert result.returncode == 1


def test_a_program_that_does_not_compile_fails(pool):
    result = pool.run("def f(:\n")
    assert result.status is Status.FAILED
    assert result.error.startswith("SyntaxError")


def test_the_program_runs_as_main_in_a_fresh_working_directory(pool):
    code = "import os\nassert __name__ == '__main__'\nprint(os.getcwd(), os.listdir('.'))"
    first, second = pool.run(code), pool.run(code)
    assert first.passed and second.passed
    assert first.stdout.startswith("/tmp/run-") and first.stdout != second.stdout


def test_stdin_is_empty(pool):
    assert pool.run("import sys\nassert sys.stdin.read() == ''").passed


def test_output_beyond_the_cap_is_dropped_and_flagged(pool):
    result = pool.run("print('x' * 5000)", max_output=100)
    assert result.passed
    assert result.stdout == "x" * 100 and result.stdout_truncated and not result.stderr_truncated


def test_bad_limits_are_refused(pool):
    with pytest.raises(ValueError, match="timeout"):
        pool.run("pass", timeout=0)
    with pytest.raises(ValueError, match="memory_mb"):
        pool.run("pass", memory_mb=-1)
    with pytest.raises(ValueError, match="max_output"):
        pool.run("pass", max_output=-5)
    with pytest.raises(TypeError, match="code"):
        pool.run(b"pass")  # type: ignore[arg-type]


def test_a_timeout_is_reported_as_a_timeout_not_a_failure(pool):
    result = pool.run("while True:\n    pass", timeout=0.5)
    assert result.status is Status.TIMEOUT
    assert 0.5 <= result.duration < 2


def test_running_out_of_memory_is_reported_as_memory(pool):
    result = pool.run("x = bytearray(512 * 1024 * 1024)", memory_mb=128)
    assert result.status is Status.MEMORY
    assert result.error == "MemoryError"


def test_the_memory_limit_can_be_lifted(pool):
    assert pool.run("x = bytearray(200 * 1024 * 1024)", memory_mb=None).passed


# ----- many programs -------------------------------------------------------------------------


def test_run_many_returns_results_in_input_order(pool):
    results = pool.run_many([f"print({i})" for i in range(30)])
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(30)]


def test_programs_run_in_parallel():
    with SandboxPool(2) as pool:
        pool.run_many(["pass"] * 4)  # both sandboxes started
        start = time.monotonic()
        results = pool.run_many(["import time\ntime.sleep(0.5)"] * 4)
        elapsed = time.monotonic() - start
    assert all(r.passed for r in results)
    assert elapsed < 1.8  # four half-second sleeps on two sandboxes: about one second


def test_submit_returns_a_future(pool):
    future = pool.submit("print('later')")
    assert future.result(timeout=10).stdout == "later\n"


def test_a_closed_pool_refuses_work():
    pool = SandboxPool(1)
    pool.close()
    pool.close()  # twice is fine
    assert pool.closed
    with pytest.raises(SandboxError, match="closed"):
        pool.run("pass")


def test_worker_count_must_be_positive():
    with pytest.raises(ValueError, match="workers"):
        SandboxPool(0)


def test_summary_counts_each_status_apart():
    results = [
        SandboxResult(Status.PASSED, Isolation.BWRAP),
        SandboxResult(Status.PASSED, Isolation.BWRAP),
        SandboxResult(Status.FAILED, Isolation.BWRAP),
        SandboxResult(Status.TIMEOUT, Isolation.BWRAP),
        SandboxResult(Status.ERROR, Isolation.BWRAP),
    ]
    summary = RunSummary.from_results(results)
    assert summary == RunSummary(passed=2, failed=1, timeout=1, memory=0, error=1)
    assert summary.total == 5
    assert str(summary) == "5 programs: 2 passed, 1 failed, 1 timeout, 0 memory, 1 error"


# ----- isolation levels ----------------------------------------------------------------------


def test_auto_picks_bubblewrap_when_it_works():
    assert resolve_isolation("auto") is Isolation.BWRAP


def test_no_isolation_needs_an_explicit_flag():
    with pytest.raises(SandboxUnavailable, match="allow_unsafe"):
        resolve_isolation("none")
    with pytest.raises(SandboxUnavailable, match="allow_unsafe"):
        run_program("pass", isolation="none")


def test_an_unknown_isolation_level_is_a_value_error():
    with pytest.raises(ValueError, match="isolation"):
        resolve_isolation("docker")


# ----- the host going away -------------------------------------------------------------------


@pytest.mark.parametrize("level", ["bwrap", "unshare-ro"])
def test_killing_the_host_kills_every_sandboxed_process(level):
    if not works(Isolation(level), sys.executable):
        pytest.skip(f"{level} does not work here")
    marker = f"{random.randint(10_000, 99_999)}.75"
    host = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nfrom chattasks.sandbox import SandboxPool\n"
            f"pool = SandboxPool(1, isolation={level!r})\n"
            f"pool.submit(\"import subprocess\\nsubprocess.run(['sleep', bytes.fromhex('{marker.encode().hex()}').decode()])\", timeout=60)\n"
            "time.sleep(60)\n",
        ],
    )
    try:
        assert _wait_for(lambda: processes_mentioning(marker), seconds=20), "the program never started"
    finally:
        host.kill()
        host.wait()
    assert _wait_for(lambda: not processes_mentioning(marker), seconds=5), (
        "a sandboxed process outlived its host"
    )
    with SandboxPool(1, isolation=level) as pool:  # the next pool sweeps what the dead host left
        pool.run("pass")
    assert glob.glob(os.path.join(tempfile.gettempdir(), f"chattasks-sandbox-{host.pid}-*")) == []


def _wait_for(condition, seconds: float) -> bool:
    give_up = time.monotonic() + seconds
    while time.monotonic() < give_up:
        if condition():
            return True
        time.sleep(0.05)
    return False
