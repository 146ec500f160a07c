"""The compatibility matrix and bisection bookkeeping on a real database (SQLite and
PostgreSQL): which evidence settles a cell, keys kept apart, and a bisection that cannot
start losing nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from orchestrator.bisect.finish import on_verdict
from orchestrator.bisect.matrix import Key, resolve
from orchestrator.bisect.placement import ProbeStatus
from orchestrator.settings import load_settings
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope
from tests.verdict.builders import GPU_UNDER_ALL, XR, result, signature

SIG = "f0" * 32
KEY = Key("A12", "20H338sim", "sim-1", True, XR, "16.7.8")
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def job_and_run(session, *, purpose="user", status=db.RunStatus.SUCCEEDED, **extra):
    job = db.Job(id=uuid.uuid4(), created_at=T0, status="running", selector=XR,
                 spec={"compute_units": ["all"]}, bisect="auto")  # fmt: skip
    model = session.get(db.Model, "ab" * 32) or db.Model(
        sha256="ab" * 32, filename="m.mlpackage", format="mlpackage", size_bytes=1, created_at=T0
    )
    session.add_all([job, model])
    run = db.Run(id=uuid.uuid4(), job_id=job.id, model_sha256=model.sha256, device_class=XR,
                 status=status, created_at=T0, purpose=purpose, **extra)  # fmt: skip
    session.add(run)
    session.flush()
    return run


def evidence(session, status, unit, *, minutes=0, simulated=True):
    run = job_and_run(session, purpose="probe", probe_signature=SIG)
    session.add(
        db.ProbeResult(signature=SIG, chip="A12", os_build="20H338sim", runner_version="sim-1",
                       simulated=simulated, unit=unit, confidence=0.9, run_id=run.id,
                       created_at=T0 + timedelta(minutes=minutes), status=status, reason=status)
    )  # fmt: skip
    session.flush()


def test_a_cell_settles_on_its_newest_placed_reading(sessions):
    with session_scope(sessions) as session:
        evidence(session, "placed", "gpu", minutes=1)
        evidence(session, "inconclusive", "unknown", minutes=2)  # newer, but not a placement
        evidence(session, "placed", "gpu", minutes=0)
        outcome = resolve(session, SIG, KEY, parent_run_id=uuid.uuid4())
        assert outcome is not None
        assert (outcome.status, outcome.unit, outcome.evidence) == (ProbeStatus.PLACED, "gpu", 2)
        assert outcome.reused  # not probed for this parent


def test_simulated_evidence_never_answers_for_real_devices(sessions):
    with session_scope(sessions) as session:
        evidence(session, "placed", "neuralEngine", simulated=True)
        real = Key("A12", "20H338sim", "sim-1", False, XR, "16.7.8")
        outcome = resolve(session, SIG, real)
        assert outcome is not None and outcome.status is ProbeStatus.FAILED
        assert outcome.evidence == 0 and "no probe result" in outcome.reason


def test_a_probe_on_its_way_is_waited_for_and_only_then_inconclusive_counts(sessions):
    with session_scope(sessions) as session:
        evidence(session, "inconclusive", "unknown")
        lifted = job_and_run(session, purpose="probe", status=db.RunStatus.QUEUED,
                             probe_signature=SIG, bisection={"key": KEY.to_json()})  # fmt: skip
        assert resolve(session, SIG, KEY) is None
        lifted.status = db.RunStatus.FAILED
        session.flush()
        outcome = resolve(session, SIG, KEY)
        assert outcome is not None and outcome.status is ProbeStatus.INCONCLUSIVE


def test_a_bisection_that_cannot_start_keeps_the_verdict_and_says_why(sessions, tmp_path):
    from orchestrator.verdict import decide

    settings = load_settings(home=tmp_path / "home")  # an empty artifact store
    verdict = decide(result(signature(GPU_UNDER_ALL), os_version="16.7.8"), device_class=XR,
                     chip="A12", simulated=True)  # fmt: skip
    with session_scope(sessions) as session:
        run = job_and_run(session, os_build="20H338sim", os_version="16.7.8", simulated=True)
        assert on_verdict(session, run, verdict, settings=settings) == []
        assert run.bisect_state == "skipped" and "no artifact" in run.bisection["error"]
        assert session.query(db.Run).filter_by(parent_run_id=run.id).count() == 0


def test_cancelling_a_job_ends_its_pending_bisections(sessions, redis_url):
    from orchestrator.dispatch import cancel
    from orchestrator.protocol import livestate

    with session_scope(sessions) as session:
        parent = job_and_run(session, bisect_state="pending")
        probe = job_and_run(session, purpose="probe", status=db.RunStatus.QUEUED)
        probe.job_id, job_id = parent.job_id, parent.job_id
    cancelled = cancel(job_id, sessions=sessions, client=livestate.connect(redis_url))
    assert cancelled == [str(probe.id)]  # the parent had finished; its probe had not
    with sessions() as session:
        assert session.get(db.Run, parent.id).bisect_state == "cancelled"
        assert session.get(db.Run, probe.id).status == "cancelled"


def test_the_report_keeps_a_probes_own_outcome_beside_what_prefix_search_named(sessions):
    # The op's probe failed on the device; prefix search then isolated it as the cause:
    # the placement says GPU, placed by the search; the probe's own status stays "failed".
    from orchestrator.bisect.report import bisection

    with session_scope(sessions) as session:
        plan = {
            "ops": [
                {"index": 0, "name": "conv_in", "type": "conv", "signature": "a" * 64},
                {"index": 1, "name": "conv_dilated", "type": "conv", "signature": SIG},
            ],
            "signatures": {"a" * 64: {"status": "placed"}, SIG: {"status": "failed"}},
            "placements": [
                {"index": 0, "name": "conv_in", "type": "conv", "unit": "neuralEngine",
                 "status": "placed", "confidence": 0.9, "reason": ""},
                {"index": 1, "name": "conv_dilated", "type": "conv", "unit": "gpu",
                 "status": "placed", "confidence": 0.6, "role": "cause",
                 "reason": "off the ANE: found by prefix search"},
            ],
            "key": KEY.to_json(),
        }  # fmt: skip
        run = job_and_run(session, bisect_state=db.BisectState.DONE, bisection=plan)
        out = bisection(session, run)
        assert out is not None
        ops = {op.name: op for op in out.ops}
        assert (ops["conv_dilated"].by_probe, ops["conv_dilated"].role) == ("gpu", "cause")
        assert ops["conv_dilated"].probe_status == "failed"
        assert ops["conv_in"].probe_status == "placed"
