"""OpenStack Swift's own functional test suite (`test/functional` of the swift sdist),
run against a real nefeli-blockd process through `/auth/v1.0`.

scripts/test-peers/compat.sh unpacks the sdist under /opt/nefeli-peers and makes
a venv with what the suite imports; nothing is downloaded here.  The suite runs
in that venv's Python, in a temporary copy of nothing: pytest is pointed at the
unpacked sources (`-p no:cacheprovider`, so it writes nothing there) and reports
through a JUnit XML file in the caller's temporary directory.

The accounts are the ones Swift's sample test.conf names: `test:tester` (owner
of `test`), `test2:tester2` (owner of `test2`) and `test:tester3` (a second
user of `test`).  Used by tests/daemons/blockd/test_blockd_swift_functional.py
(which asserts what passes) and scripts/swift-functional-report (which prints
the whole picture).
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

PEERS = Path("/opt/nefeli-peers")
VENV_PYTHON = PEERS / "swift-func" / "bin" / "python"

#: the files issue 11 names, in the order it names them
FILES = (
    "test_account.py",
    "test_container.py",
    "test_object.py",
    "tests.py",
    "test_slo.py",
    "test_dlo.py",
    "test_versioned_writes.py",
    "test_object_versioning.py",
    "test_symlink.py",
    "test_tempurl.py",
)

#: (account, user, key): Swift's sample test.conf, keys long enough for blockd
USERS = (
    ("test", "tester", "testing-key-0001"),
    ("test2", "tester2", "testing-key-0002"),
    ("test", "tester3", "testing-key-0003"),
)


def swift_source() -> Path | None:
    """The unpacked swift 2.38 sdist, newest patch release first; None if absent."""
    found = sorted(PEERS.glob("swift-2.38.*"), key=lambda p: [int(x) for x in re.findall(r"\d+", p.name)])
    found = [p for p in found if (p / "test" / "functional" / "tests.py").is_file()]
    return found[-1] if found else None


def installed() -> bool:
    return VENV_PYTHON.is_file() and swift_source() is not None


def provision(meta_db: Path) -> None:
    """The suite's accounts and their Swift keys, on blockd's metadata database."""
    from storage_engine.objects.metadata import SyncMetadataStore

    with SyncMetadataStore(meta_db) as md:
        for account, user, key in USERS:
            md.accounts.ensure(account)
            md.tokens.set_key(f"{account}:{user}", account, key)


def write_config(path: Path, port: int) -> Path:
    (a1, u1, k1), (a2, u2, k2), (_, u3, k3) = USERS
    path.write_text(
        "[func_test]\n"
        f"auth_uri = http://127.0.0.1:{port}/auth/v1.0\n"
        f"account = {a1}\nusername = {u1}\npassword = {k1}\n"
        f"account2 = {a2}\nusername2 = {u2}\npassword2 = {k2}\n"
        f"username3 = {u3}\npassword3 = {k3}\n"
        "collate = C\ninsecure = no\n"
        "[unit_test]\nfake_syslog = False\n"
    )
    return path


@dataclass(frozen=True, slots=True)
class Outcome:
    """One test's result: `file::Class::test`, and passed/failed/skipped."""

    test_id: str
    result: str
    message: str = ""


@dataclass
class SuiteRun:
    outcomes: list[Outcome] = field(default_factory=list)
    returncode: int = 0
    output: str = ""

    def by_id(self) -> dict[str, Outcome]:
        return {o.test_id: o for o in self.outcomes}

    def counts(self) -> dict[str, Counter[str]]:
        """Per file: how many passed, failed and skipped."""
        per: dict[str, Counter[str]] = {f: Counter() for f in FILES}
        for o in self.outcomes:
            per.setdefault(o.test_id.split("::")[0], Counter())[o.result] += 1
        return per

    def table(self) -> str:
        rows = [f"{'file':28} {'passed':>7} {'failed':>7} {'skipped':>8}"]
        total: Counter[str] = Counter()
        for f, c in self.counts().items():
            rows.append(f"{f:28} {c['passed']:7} {c['failed']:7} {c['skipped']:8}")
            total.update(c)
        rows.append(f"{'all':28} {total['passed']:7} {total['failed']:7} {total['skipped']:8}")
        return "\n".join(rows)


def _test_id(classname: str, name: str) -> str:
    # classname "test.functional.test_account.TestAccount" -> "test_account.py::TestAccount::name"
    parts = classname.split(".")
    if len(parts) >= 4 and parts[:2] == ["test", "functional"]:
        return f"{parts[2]}.py::{'.'.join(parts[3:])}::{name}"
    return f"{classname}::{name}"


def parse_junit(path: Path) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for case in ET.parse(path).getroot().iter("testcase"):
        tid = _test_id(case.get("classname", ""), case.get("name", ""))
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        skipped = case.find("skipped")
        if bad is not None:
            msg = (bad.get("message") or bad.text or "").strip().splitlines()
            outcomes.append(Outcome(tid, "failed", msg[0][:300] if msg else ""))
        elif skipped is not None:
            outcomes.append(Outcome(tid, "skipped", (skipped.get("message") or "")[:300]))
        else:
            outcomes.append(Outcome(tid, "passed"))
    # a test may appear twice (a failing teardown is an error of its own): keep the worst
    rank = {"failed": 2, "skipped": 1, "passed": 0}
    worst: dict[str, Outcome] = {}
    for o in outcomes:
        if o.test_id not in worst or rank[o.result] > rank[worst[o.test_id].result]:
            worst[o.test_id] = o
    return list(worst.values())


def run_suite(config: Path, workdir: Path, files: tuple[str, ...] = FILES, timeout: float = 1800) -> SuiteRun:
    """Run the named files of the functional suite; outcomes read from JUnit XML."""
    src = swift_source()
    assert src is not None, "swift sdist not unpacked (scripts/test-peers/compat.sh)"
    junit = workdir / "swift-functional.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ST_", "OS_", "SWIFT_", "PYTEST_"))}
    env.update(SWIFT_TEST_CONFIG_FILE=str(config), PYTHONDONTWRITEBYTECODE="1", TMPDIR=str(workdir))
    cmd = [
        str(VENV_PYTHON), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-o", "addopts=",
        "--junitxml", str(junit), "-o", "junit_family=xunit1",
        *[f"test/functional/{f}" for f in files],
    ]
    r = subprocess.run(cmd, cwd=src, env=env, capture_output=True, text=True, timeout=timeout)
    if not junit.exists():
        raise RuntimeError(f"swift functional suite wrote no report (exit {r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return SuiteRun(parse_junit(junit), r.returncode, r.stdout + r.stderr)


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One line of the checked-in list: a test id or an fnmatch pattern of them."""

    pattern: str
    # "skip": pins a Swift-internal behaviour, never to be copied; "todo": not built yet;
    # "flaky": passes or fails with timing outside the server's control
    kind: str
    reason: str

    def matches(self, test_id: str) -> bool:
        return fnmatch.fnmatchcase(test_id, self.pattern)


KINDS = ("skip", "todo", "flaky")


def read_list(path: Path) -> list[ListEntry]:
    """The checked-in list: `kind  file::Class::test  reason`, one a line, `#` comments.

    Every entry must say why; a line without a reason, an unknown kind or a
    test listed twice is an error (so the list cannot quietly grow)."""
    entries: list[ListEntry] = []
    seen: set[str] = set()
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 3 or parts[0] not in KINDS or parts[1].count("::") not in (1, 2) or len(parts[2]) < 10:
            raise ValueError(f"{path.name}:{n}: expected `skip|todo|flaky FILE::CLASS::TEST reason`, got {raw!r}")
        if parts[1].split("::")[0] not in FILES:
            raise ValueError(f"{path.name}:{n}: {parts[1]} is in no file the suite runs")
        if parts[1] in seen:
            raise ValueError(f"{path.name}:{n}: {parts[1]} listed twice")
        seen.add(parts[1])
        entries.append(ListEntry(parts[1], parts[0], parts[2]))
    return entries


@dataclass
class Verdict:
    """A run read against the list."""

    unlisted_failures: list[Outcome]
    #: tests a skip or todo entry names exactly that pass: the entry must go
    listed_passing: list[tuple[ListEntry, Outcome]]
    unused: list[ListEntry]


def judge(run: SuiteRun, entries: list[ListEntry]) -> Verdict:
    unlisted: list[Outcome] = []
    passing: list[tuple[ListEntry, Outcome]] = []
    used: set[str] = set()
    for o in run.outcomes:
        hit = next((e for e in entries if e.matches(o.test_id)), None)
        if hit is not None:
            used.add(hit.pattern)
            if o.result == "passed" and "*" not in hit.pattern and hit.kind != "flaky":
                passing.append((hit, o))
        elif o.result == "failed":
            unlisted.append(o)
    return Verdict(unlisted, passing, [e for e in entries if e.pattern not in used])
