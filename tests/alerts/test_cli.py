"""``anefarm alerts …`` and ``anefarm sweep report | baseline`` as people run them, on a
database holding 7 quiet nights and one with a slowed class and a model that stops
compiling; JUnit read back by junitparser and, independently, by xml.etree."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from orchestrator.store.engine import make_engine, session_factory
from orchestrator.store.migrate import upgrade
from tests.alerts.nightfarm import CLASSES, alerted
from tests.cli.conftest import anefarm, assert_one_line_error

pytestmark = [pytest.mark.slow]  # a Python per command (about 20 of them)
SLOW = CLASSES[1]
LAST, QUIET = "2026-03-08", "2026-03-02"


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("home")
    url = f"sqlite:///{home / 'anefarm.db'}"
    upgrade(url)
    engine = make_engine(url)
    alerted(session_factory(engine), home, slow_median=11.5)
    engine.dispose()
    return {"home": home, "url": url}


def cli(farm: dict[str, Any], *args: str) -> Any:
    return anefarm(*args, home=farm["home"], ANEFARM_DATABASE_URL=farm["url"])


def report(farm, *args):
    out = cli(farm, "sweep", "report", "nightly", "--json", *args)
    return out, json.loads(out.stdout)


def test_report_fails_on_regressions_and_alerts_only_when_asked(farm):
    out, body = report(farm, "--fail-on", "regression")
    assert out.returncode == 3, out.stderr
    assert body["night"] == LAST and body["analysis"] == "analysed"
    assert body["counts"]["REGRESSION"] >= 3 and body["counts"]["FAILED"] >= 1
    assert report(farm, "--fail-on", "none")[0].returncode == 0
    assert report(farm, "--fail-on", "alert")[0].returncode == 3
    quiet, quiet_body = report(farm, "--night", QUIET, "--fail-on", "regression")
    assert quiet.returncode == 0 and quiet_body["night"] == QUIET
    rows = list(
        csv.DictReader(io.StringIO(cli(farm, "sweep", "report", "nightly", "--csv").stdout))
    )
    assert len(rows) == len(body["checks"]) and {"series", "check", "status"} <= set(rows[0])


def test_junit_has_one_failure_per_regression_for_junitparser_and_etree(farm, tmp_path):
    from junitparser import Error, Failure, JUnitXml, Skipped

    path = tmp_path / "night.xml"
    out, body = report(farm, "--junit", str(path))
    assert out.returncode == 0
    regressions = [c for c in body["checks"] if c["status"] == "REGRESSION"]
    errors = [c for c in body["checks"] if c["status"] in ("FAILED", "MISSING")]
    skipped = [c for c in body["checks"] if c["status"] == "INSUFFICIENT_DATA"]
    xml = JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert sorted(s.name.split()[1] for s in suites) == sorted(CLASSES)  # one per class
    results = [type(r) for s in suites for case in s for r in case.result]
    assert results.count(Failure) == len(regressions) == sum(s.failures for s in suites)
    assert results.count(Error) == len(errors) and results.count(Skipped) == len(skipped)
    assert sum(s.tests for s in suites) == len(body["checks"])
    failed = [r for s in suites for case in s for r in case.result if isinstance(r, Failure)]
    # The message names the figures and the cause.
    assert all("%" in f.message and "device/OS unchanged, model unchanged" in f.message
               for f in failed)  # fmt: skip

    # An independent reader against the documented minimal schema: testsuites > testsuite
    # (name, tests, failures, errors, skipped, time) > testcase (classname, name, time) with
    # optional failure/error (message, type) or skipped.
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    seen = {"failure": 0, "error": 0, "skipped": 0}
    for suite in root:
        assert suite.tag == "testsuite"
        assert {"name", "tests", "failures", "errors", "skipped", "time"} <= set(suite.attrib)
        cases = list(suite.iter("testcase"))
        assert int(suite.attrib["tests"]) == len(cases)
        for case in cases:
            assert {"classname", "name", "time"} <= set(case.attrib)
            assert case.attrib["classname"].startswith("nightly.")
            for child in case:
                assert child.tag in ("failure", "error", "skipped", "system-out"), child.tag
                if child.tag in seen:
                    seen[child.tag] += 1
                if child.tag in ("failure", "error"):
                    assert child.attrib.get("message") and child.attrib.get("type")
        assert int(suite.attrib["failures"]) == sum(len(c.findall("failure")) for c in cases)
    assert seen["failure"] == len(regressions) and seen["error"] == len(errors)


def test_alerts_list_show_and_triage_keep_who_and_when(farm):
    listed = json.loads(cli(farm, "alerts", "list", "--sweep", "nightly", "--json").stdout)
    alerts = listed["alerts"]
    assert {a["kind"] for a in alerts} == {"regression", "failure"}
    slowed = next(a for a in alerts if a["kind"] == "regression")
    assert slowed["device_classes"] == [SLOW] and slowed["status"] == "untriaged"
    ack = cli(farm, "alerts", "ack", str(slowed["id"]), "--note", "looking", "--by", "ana")
    assert ack.returncode == 0 and "untriaged → acknowledged by ana" in ack.stdout
    assert cli(farm, "alerts", "wontfix", str(slowed["id"])).returncode == 0  # OS user
    shown = json.loads(cli(farm, "alerts", "show", str(slowed["id"]), "--json").stdout)
    assert [(t["from"], t["to"], t["note"]) for t in shown["triage"]] == [
        ("untriaged", "acknowledged", "looking"), ("acknowledged", "wontfix", None)]  # fmt: skip
    assert shown["triage"][0]["by"] == "ana" and shown["triage"][1]["by"]
    assert all(f["device_class"] == SLOW for f in shown["findings"])
    text = cli(farm, "alerts", "show", str(slowed["id"])).stdout
    assert "device/OS unchanged, model unchanged" in text and "ana" in text
    open_now = json.loads(cli(farm, "alerts", "list", "--status", "open", "--json").stdout)
    assert slowed["id"] not in [a["id"] for a in open_now["alerts"]]


def test_bad_input_is_one_line_with_the_documented_exit_code(farm):
    assert_one_line_error(cli(farm, "alerts", "show", "999"), "no alert 999")
    assert_one_line_error(cli(farm, "sweep", "report", "nope"), "no sweep 'nope'")
    assert_one_line_error(cli(farm, "sweep", "baseline", "nightly", "--night", "2020-01-01"),
                          "no night of 2020-01-01")  # fmt: skip
    for args in (("alerts", "list", "--status", "bogus"),
                 ("sweep", "report", "nightly", "--fail-on", "sometimes"),
                 ("sweep", "report", "nightly", "--night", "yesterday")):  # fmt: skip
        out = cli(farm, *args)
        assert out.returncode == 2 and out.stderr.startswith("anefarm: error: "), out.stderr
        assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) == 1


def test_a_pinned_baseline_is_recorded_with_its_label(farm):
    out = cli(farm, "sweep", "baseline", "nightly", "--night", "2026-03-03", "--label", "v2.3",
              "--by", "ana")  # fmt: skip
    assert out.returncode == 0 and "pinned to the night of 2026-03-03 (v2.3) by ana" in out.stdout
    engine = make_engine(farm["url"])
    from sqlalchemy import select

    from orchestrator.store import models as db

    with session_factory(engine)() as session:
        pins = session.scalars(select(db.SweepBaseline).where(db.SweepBaseline.kind == "pin")).all()
    engine.dispose()
    assert [(p.label, p.by) for p in pins] == [("v2.3", "ana")]


def test_a_gate_never_passes_a_night_whose_analysis_failed(farm):
    engine = make_engine(farm["url"])
    from sqlalchemy import update

    from orchestrator.store import models as db

    def set_state(state):
        with engine.begin() as conn:
            conn.execute(update(db.NightAnalysis).values(state=state))

    set_state("error")
    try:
        out = cli(farm, "sweep", "report", "nightly", "--night", QUIET, "--fail-on", "regression")
        assert_one_line_error(out, "is not analysed: its analysis failed")
        # Without a gate the report still shows what there is.
        assert cli(farm, "sweep", "report", "nightly", "--night", QUIET).returncode == 0
    finally:
        set_state("analysed")
        engine.dispose()


def test_alerts_list_help_names_every_status(tmp_path) -> None:
    from orchestrator.alerts.views import STATUSES

    shown = anefarm("alerts", "list", "--help", home=tmp_path, COLUMNS="200")
    assert shown.returncode == 0
    text = " ".join(shown.stdout.split())
    assert [s for s in STATUSES if s not in text] == []
