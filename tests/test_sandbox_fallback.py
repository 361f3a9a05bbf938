"""The weaker levels: the unshare fallback when bubblewrap is missing, and no isolation on request."""

from __future__ import annotations

import ast
import glob
import os
import random
import socket
import sys
import tempfile
import time
import warnings

import pytest

from chattasks.errors import SandboxUnavailable
from chattasks.sandbox import Isolation, SandboxPool, SandboxWarning, Status, resolve_isolation
from chattasks.sandbox import isolation as isolation_module

needs_unshare = pytest.mark.skipif(
    not isolation_module.works(Isolation.UNSHARE, sys.executable), reason="unshare does not work here"
)


@pytest.fixture(scope="module")
def fallback():
    with SandboxPool(1, isolation="unshare") as pool:
        yield pool


@pytest.fixture
def unsafe():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SandboxWarning)
        pool = SandboxPool(1, isolation="none", allow_unsafe=True)
    with pool:
        yield pool


def _works_except(missing: set[Isolation]):
    real = isolation_module.works
    return lambda level, python: level not in missing and real(level, python)


# ----- choosing a level ----------------------------------------------------------------------


@needs_unshare
def test_auto_falls_back_to_unshare_with_a_warning_when_bubblewrap_is_missing(monkeypatch):
    monkeypatch.setattr(isolation_module, "works", _works_except({Isolation.BWRAP}))
    with pytest.warns(SandboxWarning, match="bubblewrap"):
        assert resolve_isolation("auto") is Isolation.UNSHARE


def test_auto_refuses_to_run_unisolated_without_the_flag(monkeypatch):
    monkeypatch.setattr(isolation_module, "works", _works_except({Isolation.BWRAP, Isolation.UNSHARE}))
    with pytest.raises(SandboxUnavailable, match="allow_unsafe"):
        resolve_isolation("auto")
    with pytest.warns(SandboxWarning, match="NO isolation"):
        assert resolve_isolation("auto", allow_unsafe=True) is Isolation.NONE


def test_asking_for_a_level_that_does_not_work_raises(monkeypatch):
    monkeypatch.setattr(isolation_module, "works", _works_except({Isolation.BWRAP}))
    with pytest.raises(SandboxUnavailable, match="bwrap"):
        SandboxPool(1, isolation="bwrap")


# ----- the unshare fallback ------------------------------------------------------------------


@needs_unshare
def test_the_fallback_reports_itself_and_grades_by_the_harness(fallback):
    passed = fallback.run("print('hi')")
    assert passed.passed and passed.isolation is Isolation.UNSHARE and passed.stdout == "hi\n"
    assert fallback.run("import sys\nprint('PASSED')\nsys.exit(0)").status is Status.FAILED
    assert fallback.run("import os\nos._exit(0)").status is Status.FAILED


@needs_unshare
def test_the_fallback_has_no_network_and_no_secrets(fallback, monkeypatch):
    secret = f"s3cr3t-{random.getrandbits(64):x}"
    monkeypatch.setenv("CHATTASKS_TEST_TOKEN", secret)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        code = (
            f"import os, socket\nprint(dict(os.environ))\nsocket.create_connection(('127.0.0.1', {port}), 2)"
        )
        with SandboxPool(1, isolation="unshare") as fresh:
            result = fresh.run(code)
    assert result.status is Status.FAILED
    assert result.error.startswith(("ConnectionRefusedError", "OSError: [Errno 101]")), result.error
    assert secret not in result.stdout


@needs_unshare
def test_the_fallback_kills_the_whole_tree_on_timeout(fallback):
    code = "import os, subprocess, time\nsubprocess.Popen(['sleep', '60'], start_new_session=True)\n"
    code += "os.fork()\nwhile True:\n    pass\n"
    result = fallback.run(code, timeout=1)
    assert result.status is Status.TIMEOUT and result.duration < 3
    pids = ast.literal_eval(
        fallback.run("import os\nprint([p for p in os.listdir('/proc') if p.isdigit()])").stdout
    )
    assert len(pids) == 2  # the server and the program that looked


@needs_unshare
def test_the_fallback_limits_memory(fallback):
    assert fallback.run("x = bytearray(1 << 30)", memory_mb=128).status is Status.MEMORY


@needs_unshare
def test_the_fallback_removes_its_temporary_directories():
    pattern = os.path.join(tempfile.gettempdir(), "chattasks-sandbox-*")
    before = set(glob.glob(pattern))
    with SandboxPool(2, isolation="unshare") as pool:
        locked = "import os\nos.makedirs('a/b')\nos.chmod('a/b', 0)\nos.chmod('a', 0o500)\n"
        results = pool.run_many([locked + "open('scratch.txt', 'w').write('x' * 1000)"] * 4)
        assert all(r.passed for r in results)
        assert len(set(glob.glob(pattern)) - before) == 2  # one per sandbox, while it runs
    assert set(glob.glob(pattern)) - before == set()


# ----- no isolation, explicitly --------------------------------------------------------------


def test_unsafe_mode_still_grades_by_the_harness(unsafe):
    assert unsafe.isolation is Isolation.NONE
    assert unsafe.run("print('ok')").passed
    assert unsafe.run("import sys\nsys.exit(0)").status is Status.FAILED
    assert unsafe.run("while True:\n    pass", timeout=0.5).status is Status.TIMEOUT
    assert "CHATTASKS" not in unsafe.run("import os\nprint(dict(os.environ))").stdout


def test_a_program_that_kills_its_server_gets_an_error_and_the_next_one_a_fresh_server(unsafe, tmp_path):
    survivor = tmp_path / "outlived-the-server"
    code = f"import os, signal, time\nos.kill(os.getppid(), signal.SIGKILL)\ntime.sleep(0.3)\nopen({str(survivor)!r}, 'w')"
    killed = unsafe.run(code)
    assert killed.status is Status.ERROR
    assert "sandbox" in killed.error
    assert unsafe.run("print('still working')").passed
    time.sleep(0.5)
    assert not survivor.exists()  # it died with its server
