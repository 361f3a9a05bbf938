"""The adversarial corpus: hostile or broken completions of a toy problem, graded the HumanEval way.

Every completion below is either plainly wrong or right only if its attack worked, so each test
states two things: the attack was contained, and the completion scored 0 (or was stopped with
the right status). The toy problem asks for ``add(a, b)``. The whole corpus runs under both
isolation levels, bubblewrap and the ``unshare-ro`` fallback (forced), and asks the same of each.
"""

from __future__ import annotations

import ast
import random
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import pytest
from host_processes import processes_mentioning

from chattasks.sandbox import Isolation, SandboxPool, Status
from chattasks.sandbox.isolation import failure
from chattasks.tasks.humaneval import build_program

REPO = Path(__file__).resolve().parents[1]
LEVELS = [
    pytest.param(level, marks=pytest.mark.skipif(bool(why), reason=f"{level} does not work here: {why}"))
    for level in (Isolation.BWRAP, Isolation.UNSHARE_RO)
    for why in [failure(level, sys.executable)]
]
PROBLEM = {
    "messages": [
        {"role": "user", "content": 'import math\n\n\ndef add(a: int, b: int) -> int:\n    """a + b"""\n'},
        {"role": "assistant", "content": "def add(a, b):\n    return a + b\n"},
    ],
    "entry_point": "add",
    "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n",
}
RIGHT = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return None\n"
# right only when the attack above it set PWNED
RIGHT_IF_PWNED = "def add(a, b):\n    return a + b if PWNED else None\n"
SANDBOX_PIDS = "import os\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))"


@pytest.fixture(scope="module", params=LEVELS, ids=str)
def level(request) -> Isolation:
    """Each isolation level in turn; the fixtures below follow it."""
    return request.param


@pytest.fixture(scope="module")
def pool(level):
    with SandboxPool(2, isolation=level) as pool:
        yield pool


@pytest.fixture(scope="module")
def solo(level):
    """One sandbox, so that a second program sees what the first left behind."""
    with SandboxPool(1, isolation=level) as pool:
        yield pool


@pytest.fixture
def host_dir():
    """A host directory the sandbox can see (read-only), holding a file that must survive."""
    path = Path(tempfile.mkdtemp(prefix="chattasks-hostile-", dir="/var/tmp"))
    (path / "precious.txt").write_text("keep me")
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


def grade(pool: SandboxPool, completion: str, **limits):
    return pool.run(build_program(PROBLEM, completion), **limits)


def assert_sandbox_is_empty(solo: SandboxPool) -> None:
    """Only the fork server (PID 1) and the checking program itself are alive in the sandbox."""
    result = solo.run(SANDBOX_PIDS)
    assert result.passed, result
    pids = ast.literal_eval(result.stdout)
    assert len(pids) == 2 and pids[0] == 1, pids


def test_the_toy_problem_is_solvable_and_the_wrong_answer_is_not(pool):
    assert grade(pool, RIGHT).passed
    assert grade(pool, WRONG).status is Status.FAILED


# ----- exiting before or during the tests never passes ----------------------------------------

EXITS = {
    "sys.exit(0) before the tests": RIGHT + "import sys\nsys.exit(0)\n",
    "os._exit(0) before the tests": RIGHT + "import os\nos._exit(0)\n",
    "raise SystemExit before the tests": RIGHT + "raise SystemExit\n",
    "builtin exit() before the tests": RIGHT + "exit()\n",
    "sys.exit(0) inside the tests": "def add(a, b):\n    import sys\n    sys.exit(0)\n",
    "os._exit(0) inside the tests": "def add(a, b):\n    import os\n    os._exit(0)\n",
    "raise SystemExit(0) inside the tests": "def add(a, b):\n    raise SystemExit(0)\n",
    "KeyboardInterrupt inside the tests": "def add(a, b):\n    raise KeyboardInterrupt\n",
    "SIGKILL to itself": "def add(a, b):\n    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)\n",
    "kill its parent, then exit 0": RIGHT
    + "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos._exit(0)\n",
    "kill its parent inside the tests": "def add(a, b):\n    import os, signal\n"
    "    os.kill(os.getppid(), signal.SIGKILL)\n    os.kill(os.getppid(), signal.SIGTERM)\n    os._exit(0)\n",
}


@pytest.mark.parametrize("completion", EXITS.values(), ids=EXITS.keys())
def test_exiting_early_fails(pool, completion):
    result = grade(pool, completion)
    assert result.status is Status.FAILED, result
    assert grade(pool, RIGHT).passed  # and the sandbox is still fine


FORGERIES = {
    "print a pass marker, then exit 0": RIGHT
    + "print('PASSED'); print('All tests passed'); print('ok')\nimport os\nos._exit(0)\n",
    "print a pass marker inside the tests": "def add(a, b):\n    import os, sys\n"
    "    print('passed'); sys.stdout.flush(); os._exit(0)\n",
    "write guessed verdicts to every fd": RIGHT + "import os\nfor fd in range(3, 64):\n    try:\n"
    "        os.write(fd, f'ok {\"0\" * 32} {os.getpid()}\\npassed\\n'.encode())\n"
    "    except OSError:\n        pass\nos._exit(0)\n",
    "close the verdict pipe and stdout": "import os\nfor fd in (1, 2, 3):\n    os.close(fd)\n" + RIGHT,
}


@pytest.mark.parametrize("completion", FORGERIES.values(), ids=FORGERIES.keys())
def test_forged_pass_markers_fail(pool, completion):
    assert grade(pool, completion).status is Status.FAILED


# ----- escapes -------------------------------------------------------------------------------


def test_reloading_os_and_using_the_shell_cannot_touch_host_files(pool, host_dir):
    completion = (
        "import importlib, os, subprocess\nimportlib.reload(os)\n"
        f"os.system('echo pwned > {host_dir}/pwned.txt; rm -f {host_dir}/precious.txt')\n"
        f"subprocess.run(['rm', '-f', '{host_dir}/precious.txt'])\n"
        f"PWNED = os.path.exists('{host_dir}/pwned.txt')\n" + RIGHT_IF_PWNED
    )
    assert grade(pool, completion).status is Status.FAILED
    assert sorted(p.name for p in host_dir.iterdir()) == ["precious.txt"]


def test_writing_and_deleting_outside_the_work_dir_is_refused(pool, host_dir, tmp_path):
    completion = (
        "import os, shutil\nPWNED = False\n"
        f"for path in ('{host_dir}/pwned.txt', '{tmp_path}/pwned.txt', '/usr/pwned.txt', '/etc/pwned'):\n"
        "    try:\n        open(path, 'w').write('x')\n        PWNED = True\n    except OSError:\n        pass\n"
        f"for remove in (lambda: os.remove('{host_dir}/precious.txt'), lambda: shutil.rmtree('{host_dir}')):\n"
        "    try:\n        remove()\n        PWNED = True\n    except OSError:\n        pass\n"
        + RIGHT_IF_PWNED
    )
    assert grade(pool, completion).status is Status.FAILED
    assert sorted(p.name for p in host_dir.iterdir()) == ["precious.txt"]
    assert not (tmp_path / "pwned.txt").exists()


HOST_PLACES = {
    "host /tmp": Path(tempfile.gettempdir()),
    "HOME": Path.home(),
    "the repository": REPO,
    "/var/tmp": Path("/var/tmp"),
    "/dev/shm": Path("/dev/shm"),
}
WRITE_EVERY_WAY = (
    "import os, subprocess\n"
    "for path in TARGETS:\n"
    "    attempts = (\n"
    "        lambda: open(path, 'w').write('x'),\n"
    "        lambda: os.mkdir(path + '.dir'),\n"
    "        lambda: os.symlink('/etc/hostname', path + '.link'),\n"
    "        lambda: os.link(__file__, path + '.hardlink'),\n"
    "        lambda: subprocess.run(['sh', '-c', f'echo x > {path}.sh'], stderr=subprocess.DEVNULL),\n"
    "    )\n"
    "    for attempt in attempts:\n"
    "        try:\n            attempt()\n        except OSError:\n            pass\n"
)


def test_no_file_written_anywhere_reaches_the_host(solo):
    marker = f"chattasks-hostile-{random.getrandbits(48):x}"
    targets = [str(place / marker) for place in HOST_PLACES.values()]
    assert grade(solo, f"TARGETS = {targets!r}\n" + WRITE_EVERY_WAY + WRONG).status is Status.FAILED
    left = {name: sorted(place.glob(f"{marker}*")) for name, place in HOST_PLACES.items()}
    for path in [p for paths in left.values() for p in paths]:  # never leave a failure's litter
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    assert left == {name: [] for name in HOST_PLACES}
    seen_next = solo.run("import os\nprint(os.listdir('/tmp'), os.listdir('/dev/shm'))")
    assert seen_next.passed and marker not in seen_next.stdout  # nor is it left in the sandbox


def test_no_disk_or_memory_device_of_the_host_can_be_opened(pool):
    devices = [str(p) for p in Path("/dev").iterdir() if p.is_block_device()]
    devices += ["/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg"]
    completion = (
        f"PWNED = False\nfor path in {devices!r}:\n    try:\n        open(path, 'rb').close()\n"
        "        PWNED = True\n    except OSError:\n        pass\n" + RIGHT_IF_PWNED
    )
    assert grade(pool, completion).status is Status.FAILED


def test_the_program_holds_no_capability(pool):
    result = pool.run("print(open('/proc/self/status').read())")
    sets = dict(line.split(":") for line in result.stdout.splitlines() if line.startswith("Cap"))
    assert {"CapInh", "CapPrm", "CapEff", "CapBnd"} <= set(sets)
    assert {name: int(value, 16) for name, value in sets.items()} == dict.fromkeys(sets, 0)


REMOUNTS = {
    "remount the root": "mount -o remount,rw /",
    "remount the root's bind mount": "mount -o remount,bind,rw /",
    "unmount what hides /run": "umount -l /run",
    "mount over /var/tmp": "mount -t tmpfs none /var/tmp",
    "nest a user namespace": "unshare -Ur true",
}


@pytest.mark.parametrize("command", REMOUNTS.values(), ids=REMOUNTS.keys())
def test_remounting_or_unmounting_is_refused(pool, command):
    completion = f"import os\nPWNED = os.system({command + ' 2>/dev/null'!r}) == 0\n" + RIGHT_IF_PWNED
    assert grade(pool, completion).status is Status.FAILED


def test_nesting_namespaces_is_refused_even_without_proc(pool):
    completion = (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "PWNED = any(libc.unshare(flag) == 0 for flag in (0x10000000, 0x10020000))  # user, user + mount\n"
        + RIGHT_IF_PWNED
    )
    assert grade(pool, completion).status is Status.FAILED


def test_the_network_is_unreachable_even_on_loopback(pool):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        completion = (
            "import socket\ntry:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'stolen')\n"
            "    PWNED = True\nexcept OSError:\n    PWNED = False\n" + RIGHT_IF_PWNED
        )
        assert grade(pool, completion).status is Status.FAILED
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody knocked


def test_the_environment_holds_none_of_our_secrets(monkeypatch, level):
    secret = f"s3cr3t-{random.getrandbits(64):x}"
    monkeypatch.setenv("CHATTASKS_TEST_TOKEN", secret)
    completion = (
        "import os, glob\nseen = str(dict(os.environ))\n"
        "for path in glob.glob('/proc/*/environ'):\n"
        "    try:\n        seen += open(path, 'rb').read().decode(errors='replace')\n"
        "    except OSError:\n        pass\n"
        "print(seen)\n"
        f"PWNED = {secret[:6]!r} + {secret[6:]!r} in seen\n" + RIGHT_IF_PWNED
    )
    with SandboxPool(1, isolation=level) as fresh:  # started while the secret is in our environment
        result = grade(fresh, completion)
    assert result.status is Status.FAILED
    assert secret not in result.stdout + result.stderr


def test_home_directories_are_hidden(pool):
    home = Path.home()
    marker = home / f".chattasks-secret-{random.getrandbits(32):x}"
    try:
        marker.write_text("private")
    except OSError:
        pytest.skip("home directory is not writable")
    try:
        completion = f"import os\nPWNED = os.path.exists({str(marker)!r})\n" + RIGHT_IF_PWNED
        assert grade(pool, completion).status is Status.FAILED
    finally:
        marker.unlink()


def test_raising_its_own_limits_is_refused(pool):
    completion = (
        "import resource\ntry:\n"
        "    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
        "    PWNED = True\nexcept (ValueError, OSError):\n    PWNED = False\n" + RIGHT_IF_PWNED
    )
    assert grade(pool, completion).status is Status.FAILED


# ----- resource abuse ------------------------------------------------------------------------


def test_a_bounded_fork_bomb_is_cleaned_up(solo):
    completion = (
        "import os, time\nroot = os.getpid()\nfor _ in range(7):\n    os.fork()\n"
        "if os.getpid() != root:\n    time.sleep(60)\n"
        "time.sleep(0.3)\nprint(len([p for p in os.listdir('/proc') if p.isdigit()]), 'processes')\n" + WRONG
    )
    result = grade(solo, completion, timeout=5)
    assert result.status is Status.FAILED
    assert int(result.stdout.split()[0]) > 100
    assert_sandbox_is_empty(solo)


def test_a_fork_bomb_that_never_ends_times_out_and_is_cleaned_up(solo):
    completion = "import os, time\nfor _ in range(6):\n    os.fork()\ntime.sleep(60)\n" + RIGHT
    result = grade(solo, completion, timeout=1)
    assert result.status is Status.TIMEOUT
    assert result.duration < 3
    assert_sandbox_is_empty(solo)


def test_a_memory_hog_is_stopped_with_status_memory(pool):
    completion = "hog = []\nwhile True:\n    hog.append(bytearray(10 ** 7))\n" + RIGHT
    assert grade(pool, completion, memory_mb=128).status is Status.MEMORY


def test_an_infinite_loop_times_out(pool):
    result = grade(pool, "def add(a, b):\n    while True:\n        pass\n", timeout=1)
    assert result.status is Status.TIMEOUT
    assert 1 <= result.duration < 3


def test_threads_spinning_the_cpu_time_out_without_slowing_the_others(pool):
    spinner = (
        "import threading\ndef spin():\n    while True:\n        pass\n"
        "for _ in range(8):\n    threading.Thread(target=spin, daemon=True).start()\n"
        "def add(a, b):\n    spin()\n"
    )
    programs = [build_program(PROBLEM, spinner)] + [build_program(PROBLEM, RIGHT)] * 12
    results = pool.run_many(programs, timeout=1.5)
    assert results[0].status is Status.TIMEOUT
    assert all(r.passed for r in results[1:])
    assert max(r.duration for r in results[1:]) < 0.5


def test_huge_output_is_capped(pool):
    completion = "def add(a, b):\n    import sys\n    print('x' * 50_000_000)\n    sys.stderr.write('y' * 10_000_000)\n"
    result = grade(pool, completion, max_output=1000)
    assert result.status is Status.FAILED
    assert len(result.stdout) == 1000 and result.stdout_truncated
    assert len(result.stderr) <= 1000 and result.stderr_truncated


def test_a_daemonised_child_is_not_left_running(solo):
    marker = f"{random.randint(10_000, 99_999)}.25"
    completion = (
        "import os, subprocess, time\n"
        f"daemon = subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(60)\n    os._exit(0)\n"
        "time.sleep(0.1)\nprint('daemon running:', daemon.poll() is None, flush=True)\n" + WRONG
    )
    result = grade(solo, completion)
    assert result.status is Status.FAILED
    assert "daemon running: True" in result.stdout
    assert processes_mentioning(marker) == []
    assert_sandbox_is_empty(solo)


def test_sleeping_in_atexit_does_not_hold_up_the_verdict(pool):
    completion = (
        "import atexit, time\natexit.register(time.sleep, 60)\natexit.register(print, 'PASSED')\n" + WRONG
    )
    result = grade(pool, completion, timeout=3)
    assert result.status is Status.FAILED
    assert result.duration < 1 and "PASSED" not in result.stdout


def test_ignoring_sigterm_does_not_survive_the_timeout(pool):
    completion = (
        "import signal\n"
        "for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU, signal.SIGALRM):\n"
        "    signal.signal(sig, signal.SIG_IGN)\n"
        "def add(a, b):\n    while True:\n        pass\n"
    )
    result = grade(pool, completion, timeout=1)
    assert result.status is Status.TIMEOUT
    assert result.duration < 3


# ----- tampering with the interpreter --------------------------------------------------------

TAMPERING = {
    "replace exception classes in builtins": "import builtins\n"
    "builtins.AssertionError = type('Fake', (Exception,), {})\n"
    "builtins.BaseException = int\nbuiltins.Exception = int\nbuiltins.isinstance = None\n" + WRONG,
    "break os, sys and sys.modules": "import os, sys\n"
    "os._exit = lambda *args: None\nos.write = lambda *args: 0\nsys.exit = lambda *args: None\n"
    "sys.modules['os'] = None\nsys.modules['traceback'] = None\nsys.modules['builtins'] = None\n" + WRONG,
    "empty the builtins": WRONG + "__builtins__.__dict__.clear()\n",
    "define its own check": WRONG + "def check(candidate):\n    return True\n",
}


@pytest.mark.parametrize("completion", TAMPERING.values(), ids=TAMPERING.keys())
def test_tampering_with_builtins_or_modules_still_fails(pool, completion):
    assert grade(pool, completion).status is Status.FAILED


# ----- plainly broken completions ------------------------------------------------------------

BROKEN = {
    "syntax error": "def add(a, b)\n    return a + b\n",
    "prose instead of code": "Sure! The answer is to add the two numbers together.",
    "missing entry point": "def plus(a, b):\n    return a + b\n",
    "infinite recursion": "def add(a, b):\n    return add(a, b)\n",
    "segfault": "def add(a, b):\n    import ctypes\n    return ctypes.string_at(0)\n",
}


@pytest.mark.parametrize("completion", BROKEN.values(), ids=BROKEN.keys())
def test_broken_completions_fail(pool, completion):
    assert grade(pool, completion).status is Status.FAILED


def test_results_say_which_isolation_was_in_force(pool, level):
    assert pool.isolation is level
    assert grade(pool, WRONG).isolation is level


def own_tmp_entries(listing: list[str]) -> list[str]:
    """The /tmp entries a program made, leaving out the mount points of an interpreter installed under /tmp."""
    from chattasks.sandbox.isolation import _interpreter_dirs

    mounted = {Path(d).parts[2] for d in _interpreter_dirs(sys.executable) if Path(d).parts[1:2] == ("tmp",)}
    return [entry for entry in listing if entry not in mounted]


def test_a_program_cannot_see_what_the_previous_one_left_in_tmp(solo):
    solo.run("import os\nopen('/tmp/left-behind', 'w').write('x')\nopen('/dev/shm/too', 'w').write('x')")
    result = solo.run("import os\nprint([os.listdir('/tmp'), os.listdir('/dev/shm')])")
    assert result.passed
    listing = ast.literal_eval(result.stdout)
    own = own_tmp_entries(listing[0])
    assert len(own) == 1 and own[0].startswith("run-")  # its own working directory
    assert listing[1] == []


LOCK_AND_NEST = (
    "import os\nos.makedirs('locked/inner')\nopen('locked/inner/f', 'w').write('x')\n"
    "os.chmod('locked/inner', 0)\nos.chmod('locked', 0o500)\n"
    "for _ in range(2000):\n    os.mkdir('d')\n    os.chdir('d')\nopen('bottom', 'w').write('x')\n"
)


def test_directories_locked_away_or_nested_deep_are_still_removed(solo):
    assert solo.run(LOCK_AND_NEST.replace("'locked", "'/tmp/locked") + LOCK_AND_NEST).passed
    listing = own_tmp_entries(ast.literal_eval(solo.run("import os\nprint(os.listdir('/tmp'))").stdout))
    assert len(listing) == 1 and listing[0].startswith("run-")


def test_hostile_programs_in_a_batch_do_not_disturb_their_neighbours(pool):
    hostile = [EXITS["os._exit(0) inside the tests"], "def add(a, b):\n    while True:\n        pass\n"]
    programs = [build_program(PROBLEM, c) for c in [RIGHT, *hostile, RIGHT, *BROKEN.values(), RIGHT]]
    start = time.monotonic()
    results = pool.run_many(programs, timeout=1)
    assert time.monotonic() - start < 5
    assert [r.passed for r in results] == [True, False, False, True, *[False] * len(BROKEN), True]
