"""A retried repeat of a sweep's series prefers a device its series does not use tonight.

Checked first: with four ready iPhone 12s and ``repeats: 3``, a series' runs are pinned
to three of them; when the repeat on the second fails (device gone), the retry took the
first other device by UDID — the nightly run's own, so two of the series' three samples
came from one phone while the fourth stood idle. It now takes the idle one, and, when
the series already uses every other live device, still one of them (not the queue).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from orchestrator import runs
from orchestrator.runs import Effects
from orchestrator.selection import FarmView
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope
from tests.sweeps.test_nights import IPHONE12
from tests.sweeps.test_repeats import device, repeat_env, start

__all__ = ["repeat_env"]  # the fixture: a sweep with repeats: 3 (SQLite and PostgreSQL)


def _series_on_i12_0(session: Any, job_id: Any) -> list[db.Run]:
    nightly = session.scalars(
        select(db.Run).where(db.Run.job_id == job_id, db.Run.probe_repeat == 0,
                             db.Run.device_class == IPHONE12, db.Run.pinned_udid == "i12-0")
    ).first()  # fmt: skip
    assert nightly is not None  # the class's first series starts on the first device
    copies = session.scalars(
        select(db.Run).where(db.Run.parent_run_id == nightly.id).order_by(db.Run.probe_repeat)
    ).all()  # fmt: skip
    return [nightly, *copies]


def _retry(
    env: dict[str, Any], live: list[Any], job_id: Any, k: int
) -> tuple[str | None, set[str | None]]:
    """Fail repeat ``k`` of the first series on its device; where the retry goes, and the
    devices of the series' other runs."""
    with session_scope(env["sessions"]) as session:
        series = _series_on_i12_0(session, job_id)
        run = series[k]
        gone = run.pinned_udid
        assert gone is not None
        others = {r.pinned_udid for r in series if r is not run}
        assert runs.Lifecycle(env["settings"]).retry_or_fail(
            session, run, "device_gone", f"{gone} gone", avoid=gone, live=live, effects=Effects()
        )
        return run.pinned_udid, others | {gone}


def test_a_retried_repeat_goes_to_the_device_its_series_left_idle(repeat_env) -> None:
    live = [device(f"i12-{i}", IPHONE12) for i in range(4)]
    job_id, _ = start(repeat_env, live, FarmView.of({IPHONE12}))
    to, used = _retry(repeat_env, live, job_id, 1)
    # Its runs are on i12-0, -1, -2; repeat 1 (i12-1) fails. Before: i12-0 again.
    assert used == {"i12-0", "i12-1", "i12-2"} and to == "i12-3"


def test_with_every_device_used_the_retry_still_takes_another_live_one(repeat_env) -> None:
    live = [device(f"i12-{i}", IPHONE12) for i in range(3)]
    job_id, _ = start(repeat_env, live, FarmView.of({IPHONE12}))
    with repeat_env["sessions"]() as session:
        gone = _series_on_i12_0(session, job_id)[2].pinned_udid
    to, used = _retry(repeat_env, live, job_id, 2)
    assert to is not None and to != gone and to in used
