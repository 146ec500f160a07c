"""After a sweep's night ends: analyse every series against its baseline, confirm what is
unclear, store the results and alerts, tell the webhooks.

Called by the coordinator once the transaction that made a night's job final has
committed (``runs.Effects.nights``, applied by ``Ingestor.apply``), so ingest, the reaper
and redelivery all end up here. It never fails the night: any error is logged and kept
in ``night_analyses.error`` and the job's status is untouched.

1. The analysis (``orchestrator.regress``) runs over the sweep's recent nights, SIMULATED
   and real series apart.
2. An UNKNOWN latency (between clearly the same and clearly changed) gets **one
   confirmation run** that night, before anything is alerted: a copy of the nightly run
   (``parent_run_id`` → it), pinned to another live device of the class, or to the same
   one when it is alone. The job reopens (done → running), the night is ``confirming``,
   and when the confirmation ends the job is final again and this runs once more: the
   confirmation's samples join the night's point, and what is still UNKNOWN stays a check
   result, not an alert.
3. Check results and alerts are stored (``alerts.store``): open alerts are updated, raised
   again when worse, closed as recovered when back to SAME; the night is ``analysed``.
4. Each webhook of the sweep's ``notify:`` gets one message per summary raised (or raised
   again) or closed as recovered tonight (``alerts.notify``; a recovery's ``event`` says
   so), from a thread in the coordinator, so that a webhook retrying for minutes never
   holds up the results queue.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from orchestrator import runs
from orchestrator.alerts import causes, notify, store
from orchestrator.alerts.inputs import histories
from orchestrator.protocol import RunBatch
from orchestrator.settings import Settings
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope
from orchestrator.sweeps.definition import SweepDefinition

log = logging.getLogger(__name__)
CONFIRMING, ANALYSED, ERROR = "confirming", "analysed", "error"


@dataclass
class NightOutcome:
    """What one call did: for logs and tests."""

    job_id: UUID
    state: str
    confirmations: list[UUID] = field(default_factory=list)
    raised: list[store.Raised] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)  # summaries closed as recovered
    deliveries: list[notify.Delivery] = field(default_factory=list)
    error: str | None = None
    sender: threading.Thread | None = None  # the webhooks' thread (background sending)


def ended(session: Session, job_id: UUID) -> bool:
    """Is ``job_id`` a sweep's night that has just reached a final status?"""
    job = session.get(db.Job, job_id)
    return (
        job is not None
        and job.sweep_id is not None
        and job.status in (db.JobStatus.DONE, db.JobStatus.FAILED)
    )


def pending_nights(sessions: sessionmaker[Session], *, limit: int = 20) -> list[UUID]:
    """The newest final sweep nights not analysed yet (none stored, or still confirming
    though the job ended): a coordinator that stopped between a night's commit and its
    analysis, or a night with no run at all, which no result ever ended."""
    with sessions() as session:
        rows = session.execute(
            select(db.Job.id, db.NightAnalysis.state)
            .outerjoin(db.NightAnalysis, db.NightAnalysis.job_id == db.Job.id)
            .where(db.Job.sweep_id.is_not(None),
                   db.Job.status.in_([db.JobStatus.DONE, db.JobStatus.FAILED]))
            .order_by(db.Job.scheduled_for.desc())
            .limit(limit * 5)
        ).all()  # fmt: skip
    found = [job for job, state in rows if state is None or state == CONFIRMING]
    return list(reversed(found[:limit]))  # oldest first: a night's baseline is before it


def analyse_nights(
    job_ids: Iterable[UUID],
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    live: Any,
    publish: Any,
    background: bool = True,
) -> list[NightOutcome]:
    """Each night once (a transaction may end several). ``live``: the live devices
    (livestate.DeviceStatus); ``publish``: called with the confirmation batches. The
    coordinator sends webhooks in the ``background``: a webhook that is down must not hold
    up ingest for its retries."""
    out = []
    for job_id in dict.fromkeys(job_ids):
        out.append(analyse_night(job_id, settings=settings, sessions=sessions, live=live,
                                 publish=publish, background=background))  # fmt: skip
    return out


def analyse_night(
    job_id: UUID,
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    live: Any = (),
    publish: Any = None,
    background: bool = False,
) -> NightOutcome:
    """Never raises: the night's status does not depend on its analysis. With
    ``background`` the webhooks are told by a thread (``NightOutcome.sender``), else before
    this returns (``NightOutcome.deliveries``)."""
    try:
        outcome, batches, notes = _analyse(job_id, settings=settings, sessions=sessions,
                                           live=live)  # fmt: skip
    except Exception as error:  # the analysis must never fail the night
        log.error("analysis of night %s failed: %s", job_id, error, exc_info=True)
        _record_error(sessions, job_id, error)
        return NightOutcome(job_id, ERROR, error=f"{type(error).__name__}: {error}")
    if batches and publish is not None:
        try:
            publish(batches)
        except Exception as error:  # noqa: BLE001 - the reaper re-publishes queued runs
            log.warning("confirmation runs of night %s not published now (%s): the reaper"
                        " re-publishes them", job_id, error)  # fmt: skip
    if notes and background:
        outcome.sender = threading.Thread(target=_send, args=(sessions, settings, notes),
                                          name=f"anefarm-notify-{job_id}", daemon=True)  # fmt: skip
        outcome.sender.start()
    elif notes:
        outcome.deliveries = _send(sessions, settings, notes)
    return outcome


def _record_error(sessions: sessionmaker[Session], job_id: UUID, error: BaseException) -> None:
    text = "".join(traceback.format_exception_only(error)).strip()[:4000]
    try:
        with session_scope(sessions) as session:
            job = session.get(db.Job, job_id)
            if job is None or job.sweep_id is None:
                return
            _state(session, job, ERROR, error=text)
    except Exception:  # nothing more can be done; the log has it
        log.exception("could not record the failed analysis of night %s", job_id)


def _state(session: Session, job: db.Job, state: str, *, error: str | None = None,
           confirmations: int | None = None) -> None:  # fmt: skip
    assert job.sweep_id is not None
    row = session.get(db.NightAnalysis, job.id)
    if row is None:
        row = db.NightAnalysis(job_id=job.id, sweep_id=job.sweep_id, state=state,
                               confirmations=0, updated_at=datetime.now(UTC))  # fmt: skip
        session.add(row)
    row.state, row.error, row.updated_at = state, error, datetime.now(UTC)
    if confirmations is not None:
        row.confirmations = confirmations


@dataclass(frozen=True)
class Note:
    """A message for a webhook, prepared in the transaction, sent after it."""

    summary_id: int
    webhook: str
    format: str
    body: dict[str, Any]


def _analyse(
    job_id: UUID, *, settings: Settings, sessions: sessionmaker[Session], live: Any
) -> tuple[NightOutcome, list[RunBatch], list[Note]]:
    from orchestrator.alerts import analysis

    with session_scope(sessions) as session:
        job = session.get(db.Job, job_id, with_for_update=True)
        if job is None or job.sweep_id is None or job.scheduled_for is None:
            return NightOutcome(job_id, "not a night"), [], []
        if job.status not in (db.JobStatus.DONE, db.JobStatus.FAILED):
            return NightOutcome(job_id, "not final"), [], []
        sweep = session.get(db.Sweep, job.sweep_id)
        assert sweep is not None
        series, tonight_runs, night = histories(session, sweep, job.scheduled_for)
        definition = SweepDefinition.model_validate(sweep.definition)
        regress_settings = analysis.settings_for(definition)
        findings = analysis.tonight(series, night, regress_settings) if night else []
        # 2. UNKNOWN latencies without a confirmation yet: one run each, then wait.
        due = {(f.key.series, f.key.device_class) for f in findings if f.needs_confirmation}
        due = {pair for pair in due if pair in tonight_runs.nightly
               and not tonight_runs.confirmations.get(pair)}  # fmt: skip
        if due:
            batches = [
                _confirm(session, tonight_runs.nightly[pair], settings, live)
                for pair in sorted(due)
            ]
            runs.job_status(session, job.id)
            already = session.get(db.NightAnalysis, job.id)
            _state(session, job, CONFIRMING,
                   confirmations=(already.confirmations if already else 0) + len(batches))  # fmt: skip
            log.info("night %s of sweep %s: %d series to confirm, confirmation runs queued",
                     night, sweep.name, len(batches))  # fmt: skip
            return (NightOutcome(job_id, CONFIRMING, [b.run_id for b in batches]), batches, [])
        # 3. Store, 4. prepare the messages.
        now = datetime.now(UTC)
        stored = causes.convert(sweep.name, findings)
        store.store_checks(session, sweep.id, job.id, stored, now)
        raised = store.store_alerts(session, sweep.id, job.id, stored, now,
                                    worse=causes.worse(regress_settings))  # fmt: skip
        session.flush()  # tonight's check results count for recovery
        recovered = [] if night is None else store.close_recovered(
            session, sweep.id, job.id, night, now, nights=regress_settings.recovery_nights)  # fmt: skip
        if recovered:
            log.info("night %s of sweep %s: alerts %s recovered", night, sweep.name,
                     ", ".join(map(str, recovered)))  # fmt: skip
        _state(session, job, ANALYSED)
        notes = _notes(session, sweep, definition, night, raised, recovered)
        return NightOutcome(job_id, ANALYSED, raised=raised, recovered=recovered), [], notes


def _confirm(session: Session, nightly: db.Run, settings: Settings, live: Any) -> RunBatch:
    """A copy of the nightly run on another live device of its class (or the same one)."""
    now = datetime.now(UTC)
    pinned = runs.pick_device(nightly, live, avoid=nightly.udid or "")
    if pinned is None and nightly.udid and any(d.udid == nightly.udid for d in live):
        pinned = nightly.udid  # alone in its class: the same device again
    run = db.Run(
        id=uuid4(), job_id=nightly.job_id, model_sha256=nightly.model_sha256,
        device_class=nightly.device_class, status=db.RunStatus.QUEUED, attempts=1,
        max_attempts=settings.max_attempts, created_at=now, queued_at=now,
        purpose=nightly.purpose, parent_run_id=nightly.id, series=nightly.series,
        pinned_udid=pinned, bisect_state="skipped",
    )  # fmt: skip
    session.add(run)
    session.flush()
    return runs.Lifecycle(settings).batch_for(session, run, pinned_udid=pinned)


def _notes(
    session: Session, sweep: db.Sweep, definition: SweepDefinition, night: Any,
    raised: list[store.Raised], recovered: list[int],
) -> list[Note]:  # fmt: skip
    """One message per webhook for each summary raised (``event`` "raised") or closed as
    recovered (``event`` "recovered": its findings are those it was last raised with, now
    SAME again) tonight; sent the same way, with the same retries and records."""
    if not definition.notify:
        return []
    told = [(r.summary_id, "raised") for r in raised if r.notify]
    out = []
    for summary_id, event in told + [(summary_id, "recovered") for summary_id in recovered]:
        summary = session.get(db.AlertSummary, summary_id)
        assert summary is not None
        members = session.scalars(
            select(db.AlertFinding).where(db.AlertFinding.summary_id == summary.id,
                                          db.AlertFinding.job_id == summary.last_job_id)
        ).all()  # fmt: skip
        message = {
            "alert": summary.id, "sweep": sweep.name, "night": str(night), "event": event,
            "status": summary.status.value, "kind": summary.kind, "cause": summary.cause,
            "raised": summary.raised, "simulated": summary.simulated,
            "findings": [{"series": m.series, "device_class": m.device_class,
                          "compute_units": m.compute_units, "check": m.check,
                          "status": m.status, "message": m.message} for m in members],
        }  # fmt: skip
        for hook in definition.notify:
            if notify.wanted(hook.kinds, summary.kind):
                out.append(Note(summary.id, hook.webhook, hook.format,
                                notify.body_for(hook.format, message)))  # fmt: skip
    return out


def _send(
    sessions: sessionmaker[Session], settings: Settings, notes: list[Note]
) -> list[notify.Delivery]:
    done = []
    for note in notes:
        delivery = notify.post(note.webhook, note.body, fmt=note.format, settings=settings)
        done.append(delivery)
        try:
            with session_scope(sessions) as session:
                session.add(db.NotificationDelivery(
                    summary_id=note.summary_id, target=delivery.target, format=delivery.format,
                    ok=delivery.ok, attempts=delivery.attempts, http_status=delivery.http_status,
                    error=delivery.error, created_at=notify.now(),
                ))  # fmt: skip
        except Exception:  # a delivery that cannot be recorded is logged
            log.exception("could not record the delivery to %s", delivery.target)
    return done
