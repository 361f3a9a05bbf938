"""The run directory: settings, a journal of every finished sample, and the results.

Layout of ``RUN_DIR``::

    run.json                 the run's settings (model, backend, tasks, limit, scorer, decoding, ...)
    samples/<task>.jsonl     one line per finished sample
    results.json             the scores, written when a run (or a re-grade) ends

A journal line is one ``SampleRecord`` (``chattasks.eval.record``, which documents every field and
the schema version each line carries), keyed by ``(index, sample)`` within its task file.

Writing (``append``): all lines of a batch are encoded first, then written with one ``write``
to a file opened with ``O_APPEND``, under an exclusive ``flock``, then ``fsync``-ed. Processes
sharing a run (torchrun ranks, several machines on a file system with working ``flock``) can
append to the same file; a line is either wholly in the file or not at all, except when a
process dies inside ``write`` (or the disk fills): the unterminated tail it leaves is cut off by
the next ``append`` before it writes (and ignored by readers). Data written before a SIGKILL is
in the kernel's page cache and survives; ``fsync`` after each batch protects it against a
machine crash too.

Reading (``read``): a key that occurs more than once (two machines did the same sample) counts
once: the FIRST occurrence in the file wins, so appending more lines never changes a sample
already counted. Lines that do not parse are skipped and counted (their samples are simply done
again on resume); a line of a schema version newer than this chattasks knows raises
``JournalVersionError`` naming the file and line. Journals of the same run kept on different machines merge by concatenating
their files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chattasks.errors import JournalVersionError, RunDirError
from chattasks.eval.record import SampleRecord

RUN_FILE = "run.json"
RESULTS_FILE = "results.json"
SAMPLES_DIR = "samples"

Key = tuple[int, int]


def task_filename(task_name: str) -> str:
    """The journal file name of a task: its name with anything but ``A-Za-z0-9._-`` made ``_``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", task_name).strip(".")
    if not safe:
        raise ValueError(f"task name {task_name!r} gives an empty file name")
    return f"{safe}.jsonl"


def encode_record(record: SampleRecord) -> bytes:
    """One journal line: compact strict JSON (NaN and infinities become null), UTF-8, newline-ended."""
    text = json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (text + "\n").encode()


@contextlib.contextmanager
def _locked(path: Path, flags: int, lock: int) -> Iterator[int]:
    fd = os.open(path, flags, 0o644)
    try:
        fcntl.flock(fd, lock)
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


def _cut_unterminated_tail(fd: int) -> None:
    """Truncate the file to its last newline when a dead writer left a partial line."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    end = size
    while end > 0:
        start = max(0, end - 65536)
        chunk = os.pread(fd, end - start, start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            os.ftruncate(fd, start + newline + 1)
            return
        end = start
    os.ftruncate(fd, 0)


def append_records(path: Path, records: Iterable[SampleRecord], *, fsync: bool = True) -> int:
    """Append ``records`` to the journal file ``path`` (see the module docstring); the number written."""
    data = b"".join(encode_record(record) for record in records)
    if not data:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, fcntl.LOCK_EX) as fd:
        _cut_unterminated_tail(fd)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if fsync:
            os.fsync(fd)
    return data.count(b"\n")


@dataclass
class JournalContents:
    """What one journal file holds: records by key (first occurrence wins), in file order."""

    records: dict[Key, SampleRecord] = field(default_factory=dict)
    duplicates: int = 0  # lines whose key was already seen
    corrupt: int = 0  # complete lines that are not a JSON object with an index


def read_records(path: Path) -> JournalContents:
    """Read a journal file; a missing file is an empty journal, an unterminated last line is ignored."""
    contents = JournalContents()
    if not path.exists():
        return contents
    with _locked(path, os.O_RDONLY, fcntl.LOCK_SH) as fd, os.fdopen(os.dup(fd), "rb") as handle:
        data = handle.read()
    lines = data.split(b"\n")
    for number, line in enumerate(lines[:-1], 1):  # the piece after the last newline is unterminated
        if not line.strip():
            continue
        try:
            record = SampleRecord.from_json(json.loads(line), where=f"{path}:{number}")
        except JournalVersionError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError):
            contents.corrupt += 1
            continue
        if record.key in contents.records:
            contents.duplicates += 1
        else:
            contents.records[record.key] = record
    return contents


def rewrite_records(path: Path, records: Iterable[SampleRecord]) -> None:
    """Replace a journal file with ``records`` atomically (used by re-grading; not while a run writes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(encode_record(record) for record in records)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(data)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, path)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON, atomically (a temporary file renamed over ``path``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False, encoding="utf-8"
    ) as tmp:
        json.dump(payload, tmp, indent=2, ensure_ascii=False)
        tmp.write("\n")
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, path)


class RunDirectory:
    """A run directory: where its settings, journals and results live."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()

    @property
    def run_file(self) -> Path:
        """``RUN_DIR/run.json``: the run's settings."""
        return self.path / RUN_FILE

    @property
    def results_file(self) -> Path:
        """``RUN_DIR/results.json``: the scores."""
        return self.path / RESULTS_FILE

    def samples_path(self, task_name: str) -> Path:
        """``RUN_DIR/samples/<task>.jsonl``: the task's journal."""
        return self.path / SAMPLES_DIR / task_filename(task_name)

    def exists(self) -> bool:
        """Whether this directory holds a run (its run.json)."""
        return self.run_file.is_file()

    def has_samples(self) -> bool:
        """Whether any journal line has been written here."""
        folder = self.path / SAMPLES_DIR
        return folder.is_dir() and any(p.stat().st_size for p in folder.glob("*.jsonl"))

    def read_run(self) -> dict[str, Any]:
        """The run's settings from run.json; RunDirError when there is no run here."""
        if not self.path.is_dir():
            raise RunDirError(f"run directory {self.path} does not exist")
        if not self.exists():
            raise RunDirError(f"{self.path} holds no run ({RUN_FILE} is missing)")
        try:
            payload: dict[str, Any] = json.loads(self.run_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunDirError(f"{self.run_file}: cannot read the run's settings: {exc}") from None
        return payload

    def write_run(self, payload: dict[str, Any]) -> None:
        """Write run.json atomically."""
        write_json(self.run_file, payload)

    def append(self, task_name: str, records: Iterable[SampleRecord], *, fsync: bool = True) -> int:
        """Append finished samples to the task's journal; the number of lines written."""
        return append_records(self.samples_path(task_name), records, fsync=fsync)

    def read(self, task_name: str) -> JournalContents:
        """The finished samples of a task."""
        return read_records(self.samples_path(task_name))

    def rewrite(self, task_name: str, records: Iterable[SampleRecord]) -> None:
        """Replace a task's journal (re-grading)."""
        rewrite_records(self.samples_path(task_name), records)


class MemoryJournal:
    """The journal of a run without a run directory: ``RunDirectory``'s append/read, kept in memory."""

    def __init__(self) -> None:
        self._contents: dict[str, JournalContents] = {}

    def append(self, task_name: str, records: Iterable[SampleRecord], *, fsync: bool = True) -> int:
        """Keep ``records`` (the first record of a key wins, as in a journal file); the number given."""
        contents = self._contents.setdefault(task_name, JournalContents())
        count = 0
        for record in records:
            contents.records.setdefault(record.key, record)
            count += 1
        return count

    def read(self, task_name: str) -> JournalContents:
        """The finished samples of a task."""
        return self._contents.get(task_name, JournalContents())
