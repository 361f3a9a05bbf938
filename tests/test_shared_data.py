"""The shared-data rule: a missing dataset skips a test on a user's machine and fails it under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from shared_data import REPO, require


@pytest.mark.parametrize("ci", ["true", "1"])
def test_a_missing_path_fails_under_ci(monkeypatch, tmp_path, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match=r"mirror not found at .*absent.*CI=true"):
        require(tmp_path / "absent", "mirror")


@pytest.mark.parametrize("ci", [None, "false", ""])
def test_a_missing_path_skips_outside_ci(monkeypatch, tmp_path, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="mirror not found"):
        require(tmp_path / "absent", "mirror")
    assert require(tmp_path, "mirror") == tmp_path


@pytest.mark.parametrize(("ci", "returncode", "outcome"), [("true", 1, "1 error"), ("false", 0, "1 skipped")])
def test_a_data_test_without_shared_data_errors_under_ci_and_skips_otherwise(
    tmp_path, ci, returncode, outcome
):
    """The real wiring: conftest's hub_dir fixture, with $CHATTASKS_SHARED_DATA pointing nowhere."""
    env = {**os.environ, "CI": ci, "CHATTASKS_SHARED_DATA": str(tmp_path / "no-such-data")}
    test = "tests/test_tasks_common.py::test_a_missing_split_names_where_it_looked"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", test, "-q", "-p", "no:cacheprovider"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == returncode, done.stdout + done.stderr
    assert outcome in done.stdout
