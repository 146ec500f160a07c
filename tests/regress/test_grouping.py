"""Grouping: one summary per (sweep, night, cause), and open alerts are not re-raised."""

from __future__ import annotations

from dataclasses import replace

from orchestrator.regress import (
    AlertAction,
    Check,
    OpenAlert,
    PlacedOp,
    RegressSettings,
    Status,
    analyse,
    decide_alert,
    findings,
    group_findings,
)
from tests.regress.factory import BASE, history, night, quiet

UPGRADED = replace(BASE, os_version="18.2", os_build="22C152")


def os_upgrade_fleet():
    def placement(i: int) -> dict[str, PlacedOp]:
        unit = "gpu" if i >= 21 else "neuralEngine"
        return {
            "conv_a": PlacedOp("neuralEngine", "conv"),
            "conv_d": PlacedOp(unit, "conv dilated"),
        }

    return [
        history(
            quiet(22, sigma=0.01, seed=m),
            series=f"model{m}",
            device_class=cls,
            placement=placement,
            seed=m,
            conditions=lambda i: UPGRADED if i >= 21 else BASE,
        )
        for m in range(14)
        for cls in ("iPhone12,1", "iPhone14,5", "iPhone15,2")
    ]


def test_one_cause_over_42_series_is_one_summary():
    result = analyse(os_upgrade_fleet())
    night_findings = findings(result, night(21), alerts_only=True)
    placement = [f for f in night_findings if f.check is Check.PLACEMENT]
    assert len(placement) == 42
    (summary,) = group_findings("vision-nightly", night_findings)
    assert summary.series_count == 42
    assert summary.sweep == "vision-nightly" and summary.night == night(21)
    assert summary.title.startswith("OS iOS 18.1 (22B83) → iOS 18.2 (22C152): ")
    assert "conv dilated moved neuralEngine → gpu on 14 models × 3 device classes" in summary.title


def test_a_slowed_class_is_one_summary_naming_the_class_and_no_change():
    fleet = [
        history(
            quiet(22, sigma=0.01, seed=m)
            if cls != "iPhone14,5"
            else [*quiet(19, sigma=0.01, seed=m), 11.5, 11.5, 11.5],
            series=f"model{m}",
            device_class=cls,
            seed=m,
        )
        for m in range(4)
        for cls in ("iPhone12,1", "iPhone14,5", "iPhone15,2")
    ]
    summaries = group_findings("s", findings(analyse(fleet), night(21), alerts_only=True))
    (summary,) = summaries
    assert summary.title.startswith(
        "iPhone14,5, device/OS unchanged, model unchanged: latency +15 %"
    )
    assert {f.key.device_class for f in summary.findings} == {"iPhone14,5"}


def test_failures_group_apart_from_regressions():
    h = history(quiet(8, sigma=0.01), failed=lambda i: "compile_failed" if i == 7 else None)
    summaries = group_findings("s", findings(analyse([h]), night(7)))
    (summary,) = summaries
    assert summary.direction == "failure"
    assert "compile_failed" in summary.title


def test_an_open_alert_is_updated_and_re_raised_only_when_it_worsens():
    medians = [*quiet(20, sigma=0.01), 11.5, 11.6, 13.0]
    result = analyse([history(medians)])
    latency = [
        next(f for f in findings(result, night(i)) if f.check is Check.LATENCY)
        for i in (20, 21, 22)
    ]
    assert [f.status for f in latency] == [Status.UNKNOWN, Status.REGRESSION, Status.REGRESSION]
    assert decide_alert(None, latency[1]) is AlertAction.NEW
    opened = OpenAlert(Check.LATENCY, Status.REGRESSION, change=latency[1].change)
    assert decide_alert(opened, latency[1]) is AlertAction.UPDATE
    assert decide_alert(opened, latency[2]) is AlertAction.RE_RAISE  # +15 % → +30 %
    lax = RegressSettings(reraise_margin=0.5)
    assert decide_alert(opened, latency[2], lax) is AlertAction.UPDATE
    same = next(f for f in findings(result, night(19)) if f.check is Check.LATENCY)
    assert decide_alert(opened, same) is AlertAction.CLEARED
    assert decide_alert(None, same) is AlertAction.NONE


def test_placement_re_raises_when_more_ops_move():
    result = analyse(os_upgrade_fleet()[:1])
    f = next(f for f in findings(result, night(21)) if f.check is Check.PLACEMENT)
    assert (
        decide_alert(
            OpenAlert(Check.PLACEMENT, Status.REGRESSION, moved_ops=frozenset({"conv_d"})), f
        )
        is AlertAction.UPDATE
    )
    assert (
        decide_alert(OpenAlert(Check.PLACEMENT, Status.REGRESSION, moved_ops=frozenset()), f)
        is AlertAction.RE_RAISE
    )
    assert decide_alert(OpenAlert(Check.PLACEMENT, Status.IMPROVEMENT), f) is AlertAction.NEW
