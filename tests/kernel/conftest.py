"""Kernel tier: a per-run table printed at the end.

Each boot adds a row (kernel, mode, scenario, result, seconds, agreement) to
the table printed in pytest's terminal summary and written to
``tests/kernel/.cache/runs/SESSION/results.jsonl``, beside each run's files.
"""

import pytest

import kernel_session


@pytest.fixture
def kernel_report():
    """Call with a dict to add a row to the run table."""
    return kernel_session.add_result


def pytest_sessionfinish(session):
    kernel_session.prune_old_sessions()


def pytest_terminal_summary(terminalreporter):
    if not kernel_session.RESULTS:
        return
    tr = terminalreporter
    tr.section("kernel runs: decoded stream vs serial console")
    tr.write_line("%-5s %-9s %-10s %-6s %6s  %s" % ("kern", "mode", "scenario", "result",
                                                   "secs", "agreement"))
    for r in kernel_session.RESULTS:
        tr.write_line("%-5s %-9s %-10s %-6s %6.1f  %s" % (
            r["kernel"], r["mode"], r["scenario"], r["result"], r["seconds"],
            r.get("agreement", "")))
