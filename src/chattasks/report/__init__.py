"""``chattasks view``: one self-contained HTML report of one or more evaluation runs.

``write_report(["runs/a", "runs/b"])`` reads each run directory (``runs``), pairs the runs
question by question (``pairs``), and writes one HTML file (``render``) with the settings, a
per-task table, the accuracy chart (``chart``), per-subject tables (``groups``), the comparison
with ``chattasks compare``'s statistics (``comparison``), the flipped questions, and a sample
browser over every journaled sample (``payload``). The file opens from disk with nothing fetched.
"""

from chattasks.report.comparison import compare_report_runs
from chattasks.report.pairs import PairedTask, pair_runs
from chattasks.report.render import default_output, render_report, write_report
from chattasks.report.runs import ReportRun, load_run, load_runs

__all__ = [
    "PairedTask",
    "ReportRun",
    "compare_report_runs",
    "default_output",
    "load_run",
    "load_runs",
    "pair_runs",
    "render_report",
    "write_report",
]
