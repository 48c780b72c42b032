"""OpenStack Swift 2.38's own functional suite against a real nefeli-blockd, at /auth/v1.0.

The suite (test/functional of the swift sdist, unpacked at set-up by
scripts/test-peers/compat.sh; nothing is fetched here) runs in its own venv.
Every test it runs must pass, except those in swift_functional_list.txt beside
this file: `skip` entries pin Swift-internal behaviour, `todo` entries are what
blockd does not do yet.  Tests the suite itself skips (a feature /info does not
advertise, a second storage policy) are skips, not failures.  The per-file
figures are printed in the terminal summary.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import swift_functional_suite as sfs
from blockd_helpers import start_daemon
from peers import require_program

LIST = Path(__file__).with_name("swift_functional_list.txt")


def test_list_is_well_formed() -> None:
    entries = sfs.read_list(LIST)
    assert entries, "an empty list: delete the file's entries only when the suite passes whole"
    skips = [e for e in entries if e.kind == "skip"]
    # the list of Swift-internal behaviours stays short (issue 11)
    assert len(skips) <= 10, [e.pattern for e in skips]
    flaky = [e for e in entries if e.kind == "flaky"]
    assert len(flaky) <= 4, [e.pattern for e in flaky]


def test_list_parser_refuses_entries_without_a_reason(tmp_path: Path) -> None:
    bad = {
        "no reason": "todo tests.py::TestFile::testCopy\n",
        "short reason": "todo tests.py::TestFile::testCopy  why?\n",
        "unknown kind": "xfail tests.py::TestFile::testCopy  because it fails today\n",
        "not a test id": "todo testCopy  because it fails today\n",
        "unknown file": "todo test_s3api.py::TestX::test_y  because it fails today\n",
        "twice": "todo tests.py::A::b  because it fails today\ntodo tests.py::A::b  because it fails again\n",
    }
    for what, text in bad.items():
        p = tmp_path / "l.txt"
        p.write_text(text)
        with pytest.raises(ValueError):
            sfs.read_list(p)
        assert what


def test_judge_reads_a_run_against_the_list() -> None:
    entries = [
        sfs.ListEntry("tests.py::TestFile::testA", "todo", "not built yet at all"),
        sfs.ListEntry("test_slo.py::*", "todo", "slo not built yet at all"),
        sfs.ListEntry("tests.py::TestFile::testGone", "skip", "a test the suite no longer has"),
        sfs.ListEntry("tests.py::TestFile::testD", "flaky", "passes or fails with timing"),
    ]
    run = sfs.SuiteRun([
        sfs.Outcome("tests.py::TestFile::testA", "passed"),
        sfs.Outcome("tests.py::TestFile::testB", "failed", "boom"),
        sfs.Outcome("tests.py::TestFile::testC", "skipped"),
        sfs.Outcome("test_slo.py::TestSlo::test_x", "failed"),
        sfs.Outcome("test_slo.py::TestSlo::test_y", "passed"),
        sfs.Outcome("tests.py::TestFile::testD", "passed"),
    ])
    v = sfs.judge(run, entries)
    assert [o.test_id for o in v.unlisted_failures] == ["tests.py::TestFile::testB"]
    assert [e.pattern for e, _ in v.listed_passing] == ["tests.py::TestFile::testA"]
    assert [e.pattern for e in v.unused] == ["tests.py::TestFile::testGone"]


@pytest.mark.peer("swift-functional")
@pytest.mark.slow
@pytest.mark.timeout(1800)  # about 2 minutes alone; far more on a loaded machine
def test_swift_functional_suite(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if not sfs.installed():
        require_program(str(sfs.VENV_PYTHON))  # skips, or fails under CI=true
    entries = sfs.read_list(LIST)
    d = start_daemon(tmp_path)
    try:
        sfs.provision(d.data / "meta.db")
        run = sfs.run_suite(sfs.write_config(tmp_path / "test.conf", d.port), tmp_path)
    finally:
        d.stop()
    verdict = sfs.judge(run, entries)
    report = request.config.pluginmanager.get_plugin("terminalreporter")
    if report is not None:
        report.write_line("")
        report.write_line(f"Swift {sfs.swift_source().name} functional suite against nefeli-blockd:")  # type: ignore[union-attr]
        for line in run.table().splitlines():
            report.write_line("  " + line)
        kinds = {k: sum(1 for e in entries if e.kind == k) for k in sfs.KINDS}
        report.write_line("  list: " + ", ".join(f"{n} {k}" for k, n in kinds.items()) + " entries")
    assert run.outcomes, run.output[-3000:]
    # the suite ran: every file the list names has results (none silently vanished)
    ran = {o.test_id.split("::")[0] for o in run.outcomes}
    assert set(sfs.FILES) <= ran, set(sfs.FILES) - ran
    assert not verdict.unlisted_failures, "\n".join(
        f"{o.test_id}: {o.message}" for o in verdict.unlisted_failures
    )
    # the list only shrinks: a listed test that passes now must leave it
    assert not verdict.listed_passing, "\n".join(
        f"{o.test_id} passes now: drop its {e.kind} entry from {LIST.name}" for e, o in verdict.listed_passing
    )
