"""The levels below bubblewrap: the read-only ``unshare-ro`` fallback, refusing when even that
cannot be had, and no isolation on request. (The hostile corpus runs under the fallback too.)"""

from __future__ import annotations

import ast
import glob
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytest

from chattasks.errors import SandboxUnavailable
from chattasks.sandbox import Isolation, SandboxPool, SandboxWarning, Status, resolve_isolation
from chattasks.sandbox import isolation as isolation_module

REPO = Path(__file__).resolve().parents[1]
needs_fallback = pytest.mark.skipif(
    not isolation_module.works(Isolation.UNSHARE_RO, sys.executable),
    reason=f"unshare-ro does not work here: {isolation_module.failure(Isolation.UNSHARE_RO, sys.executable)}",
)


@pytest.fixture(scope="module")
def fallback():
    with SandboxPool(1, isolation="unshare-ro") as pool:
        yield pool


@pytest.fixture
def unsafe():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SandboxWarning)
        pool = SandboxPool(1, isolation="none", allow_unsafe=True)
    with pool:
        yield pool


@pytest.fixture
def fresh_checks():
    """Forget which levels work here, before and after the test (it changes what they find)."""
    isolation_module.failure.cache_clear()
    yield
    isolation_module.failure.cache_clear()


def _works_except(missing: set[Isolation]):
    real = isolation_module.works
    return lambda level, python: level not in missing and real(level, python)


# ----- choosing a level ----------------------------------------------------------------------


@needs_fallback
def test_auto_falls_back_to_unshare_ro_with_a_warning_when_bubblewrap_is_missing(monkeypatch):
    monkeypatch.setattr(isolation_module, "works", _works_except({Isolation.BWRAP}))
    with pytest.warns(SandboxWarning, match="apt-get install bubblewrap"):
        assert resolve_isolation("auto") is Isolation.UNSHARE_RO


def test_auto_refuses_to_run_unisolated_without_the_flag(monkeypatch):
    monkeypatch.setattr(isolation_module, "works", _works_except({Isolation.BWRAP, Isolation.UNSHARE_RO}))
    with pytest.raises(SandboxUnavailable, match="allow_unsafe"):
        resolve_isolation("auto")
    with pytest.warns(SandboxWarning, match="NO isolation"):
        assert resolve_isolation("auto", allow_unsafe=True) is Isolation.NONE


def test_with_neither_tool_installed_it_refuses_and_says_what_to_install(monkeypatch, tmp_path, fresh_checks):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap, no unshare
    with pytest.raises(SandboxUnavailable, match=r"unshare \(util-linux\) is not installed") as refused:
        SandboxPool(1)
    assert "apt-get install bubblewrap" in str(refused.value)
    assert "allow_unsafe=True" in str(refused.value)


REFUSED = """
import warnings
from chattasks.errors import SandboxUnavailable
from chattasks.sandbox import SandboxPool
try:
    SandboxPool(1)
except SandboxUnavailable as exc:
    print("refused:", exc)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    with SandboxPool(1, allow_unsafe=True) as pool:
        print(pool.isolation, pool.run("print('ran')").stdout.strip())
"""


@needs_fallback
def test_where_the_kernel_allows_no_user_namespace_it_refuses_and_says_what_to_install():
    # a user namespace whose processes may make no further one: as on a kernel that forbids them
    script = f'echo 0 > /proc/sys/user/max_user_namespaces && exec "$0" -c {shlex.quote(REFUSED)}'
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "sh", "-c", script, sys.executable],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    refused, unsafe = done.stdout.splitlines()
    assert refused.startswith("refused: neither bubblewrap nor the read-only unshare fallback")
    assert "the kernel refused new namespaces" in refused
    assert "apt-get install bubblewrap" in refused and "allow_unsafe=True" in refused
    assert unsafe == "none ran"


@needs_fallback
def test_a_read_only_set_up_that_fails_refuses_to_run_and_says_why(monkeypatch, fresh_checks):
    missing = f"/no-such-dir-{random.getrandbits(32):x}"
    real_masks = isolation_module._masks
    monkeypatch.setattr(isolation_module, "_masks", lambda python: ([missing], real_masks(python)[1]))
    with pytest.raises(SandboxUnavailable, match=f"no read-only unshare sandbox here.*{missing}"):
        resolve_isolation("unshare-ro")
    monkeypatch.setattr(isolation_module, "works", _works_except({Isolation.BWRAP}))
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        resolve_isolation("auto")


def test_asking_for_a_level_that_does_not_work_raises(monkeypatch):
    monkeypatch.setattr(isolation_module, "works", _works_except({Isolation.BWRAP}))
    with pytest.raises(SandboxUnavailable, match="bwrap"):
        SandboxPool(1, isolation="bwrap")


def test_the_writable_unshare_level_is_gone():
    with pytest.raises(ValueError, match="'unshare-ro'"):
        resolve_isolation("unshare")


# ----- the read-only fallback ----------------------------------------------------------------


@needs_fallback
def test_the_fallback_reports_itself_and_grades_by_the_harness(fallback):
    passed = fallback.run("print('hi')")
    assert passed.passed and passed.isolation is Isolation.UNSHARE_RO and passed.stdout == "hi\n"
    assert fallback.run("import sys\nprint('PASSED')\nsys.exit(0)").status is Status.FAILED
    assert fallback.run("import os\nos._exit(0)").status is Status.FAILED


@needs_fallback
def test_writes_to_home_and_host_dirs_fail_and_tmp_is_private(fallback):
    marker = f"chattasks-fallback-{random.getrandbits(48):x}"
    outside = [Path.home() / marker, REPO / marker, Path("/var/tmp") / marker, Path("/etc") / marker]
    code = (
        "import errno, os\n"
        f"for path in {[str(p) for p in outside]!r}:\n"
        "    try:\n        open(path, 'w').write('x')\n        print('wrote', path)\n"
        "    except OSError as exc:\n        print(errno.errorcode[exc.errno], path)\n"
        f"open('/tmp/{marker}', 'w').write('private')\nprint(open('/tmp/{marker}').read())\n"
    )
    result = fallback.run(code)
    assert result.passed, result
    lines = result.stdout.splitlines()
    refused = [line.split(" ", 1) for line in lines[:-1]]
    assert [path for _, path in refused] == [str(p) for p in outside]
    # ENOENT: inside a hidden home. A checkout under /tmp (CI may clone there) is, inside the sandbox,
    # a path in its private /tmp: a write there lands in the sandbox's tmpfs, never on the host (below).
    in_private_tmp = {str(p) for p in outside if str(p).startswith("/tmp/")}
    assert {error for error, path in refused if path not in in_private_tmp} <= {"EROFS", "ENOENT"}
    assert lines[-1] == "private"
    assert [p for p in [*outside, Path(tempfile.gettempdir()) / marker] if p.exists()] == []


@needs_fallback
def test_only_its_own_tmp_and_dev_shm_are_writable(fallback):
    code = (
        "import os\nseen = set()\n"
        "for line in open('/proc/self/mountinfo'):\n"
        "    point = line.split()[4].replace('\\\\040', ' ')\n"
        "    try:\n        if not os.statvfs(point).f_flag & os.ST_RDONLY:\n            seen.add(point)\n"
        "    except OSError:\n        pass\n"
        "print(sorted(seen))\n"
    )
    result = fallback.run(code)
    assert ast.literal_eval(result.stdout) == ["/dev/shm", "/tmp"]


@needs_fallback
def test_dev_holds_only_harmless_devices(fallback):
    result = fallback.run("import os\nprint(sorted(os.listdir('/dev')))")
    expected = {"null", "zero", "full", "random", "urandom", "tty", "fd", "stdin", "stdout", "stderr"}
    assert set(ast.literal_eval(result.stdout)) <= expected | {"ptmx", "pts", "shm"}
    assert fallback.run(
        "open('/dev/null', 'w').write('x')\nassert len(open('/dev/urandom', 'rb').read(8)) == 8"
    ).passed


# ----- no isolation, explicitly --------------------------------------------------------------


def test_unsafe_mode_still_grades_by_the_harness(unsafe):
    assert unsafe.isolation is Isolation.NONE
    assert unsafe.run("print('ok')").passed
    assert unsafe.run("import sys\nsys.exit(0)").status is Status.FAILED
    assert unsafe.run("while True:\n    pass", timeout=0.5).status is Status.TIMEOUT
    assert "CHATTASKS" not in unsafe.run("import os\nprint(dict(os.environ))").stdout


def test_unsafe_mode_removes_its_temporary_directories():
    pattern = os.path.join(tempfile.gettempdir(), "chattasks-sandbox-*")
    before = set(glob.glob(pattern))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SandboxWarning)
        pool = SandboxPool(2, isolation="none", allow_unsafe=True)
    with pool:
        locked = "import os\nos.makedirs('a/b')\nos.chmod('a/b', 0)\nos.chmod('a', 0o500)\n"
        results = pool.run_many([locked + "open('scratch.txt', 'w').write('x' * 1000)"] * 4)
        assert all(r.passed for r in results)
        assert len(set(glob.glob(pattern)) - before) == 2  # one per sandbox, while it runs
    assert set(glob.glob(pattern)) - before == set()


def test_a_program_that_kills_its_server_gets_an_error_and_the_next_one_a_fresh_server(unsafe, tmp_path):
    survivor = tmp_path / "outlived-the-server"
    code = f"import os, signal, time\nos.kill(os.getppid(), signal.SIGKILL)\ntime.sleep(0.3)\nopen({str(survivor)!r}, 'w')"
    killed = unsafe.run(code)
    assert killed.status is Status.ERROR
    assert "sandbox" in killed.error
    assert unsafe.run("print('still working')").passed
    time.sleep(0.5)
    assert not survivor.exists()  # it died with its server
