"""Attribution: what differed between the baseline's nights and the night of the change."""

from __future__ import annotations

from dataclasses import replace

from orchestrator.regress import (
    Check,
    Conditions,
    PlacedOp,
    Status,
    analyse,
    findings,
    group_findings,
)
from orchestrator.regress.attribution import attribute
from tests.regress.factory import BASE, history, night, quiet


def test_only_the_sha256_changed_names_the_model():
    medians = [*quiet(20, sigma=0.01), 7.0, 7.0]
    new = replace(BASE, model_sha256="b" * 64)
    h = history(medians, conditions=lambda i: new if i >= 20 else BASE)
    latency = next(f for f in findings(analyse([h])) if f.check is Check.LATENCY)
    assert latency.status is Status.IMPROVEMENT
    (change,) = latency.attribution.changes
    assert change.name == "model sha256"
    assert latency.attribution.text() == f"model changed (sha256 {'a' * 12} → {'b' * 12})"


def test_nothing_changed_says_so():
    medians = [*quiet(20, sigma=0.01), 12.0, 12.0]
    latency = next(f for f in findings(analyse([history(medians)])) if f.check is Check.LATENCY)
    assert latency.status is Status.REGRESSION
    assert latency.attribution.text() == "device/OS unchanged, model unchanged"


def test_os_runner_and_thermal_changes_are_each_named():
    tonight = replace(BASE, os_version="18.2", os_build="22C152", runner_version="1.1",
                      thermal_state="serious")  # fmt: skip
    text = attribute([BASE] * 5, tonight).text()
    assert "OS iOS 18.1 (22B83) → iOS 18.2 (22C152)" in text
    assert "runner 1.0 → 1.1" in text
    assert "thermal state nominal → serious" in text


def test_a_device_used_in_turn_by_the_class_is_not_a_change():
    devices = [replace(BASE, udid=f"dev-{i % 3}") for i in range(6)]
    assert attribute(devices, replace(BASE, udid="dev-2")).changes == ()
    (change,) = attribute(devices, replace(BASE, udid="dev-9")).changes
    assert (change.name, change.before, change.after) == ("device", "dev-2", "dev-9")


def test_an_unknown_field_tonight_is_not_a_change():
    assert attribute([BASE], Conditions()).changes == ()


# -- the thermal state: the night's, compared with the baseline's usual state ---------------

HOT = replace(BASE, thermal_state="serious")
FAIR = replace(BASE, thermal_state="fair")
UNKNOWN = replace(BASE, thermal_state="")


def test_a_throttled_night_is_named_and_says_it_throttled():
    (change,) = attribute([BASE] * 5, HOT).changes
    assert (change.name, change.before, change.after) == ("thermal state", "nominal", "serious")
    assert change.text() == "thermal state nominal → serious (throttled tonight)"


def test_one_hot_night_in_the_baseline_does_not_make_tonight_s_heat_usual():
    # "none of the baseline's values" would call this unchanged: one hot night in five.
    (change,) = attribute([BASE, BASE, HOT, BASE, BASE], HOT).changes
    assert (change.before, change.after) == ("nominal", "serious")
    assert attribute([HOT, HOT, HOT, BASE, BASE], HOT).changes == ()  # hot is the usual


def test_a_tie_in_the_baseline_goes_to_the_cooler_state():
    (change,) = attribute([HOT, BASE, HOT, BASE], HOT).changes
    assert change.before == "nominal"


def test_fair_is_not_throttled_so_nominal_and_fair_are_no_change():
    assert attribute([BASE] * 5, FAIR).changes == ()
    assert attribute([FAIR] * 5, BASE).changes == ()


def test_a_cool_night_after_a_hot_baseline_names_the_baseline():
    (change,) = attribute([HOT] * 5, BASE).changes
    assert change.text() == "thermal state serious → nominal (the baseline throttled)"


def test_a_baseline_stored_before_thermal_states_reads_unknown():
    assert attribute([UNKNOWN] * 5, BASE).changes == ()  # not throttled: nothing to say
    (change,) = attribute([UNKNOWN] * 5, HOT).changes
    assert change.text() == "thermal state unknown → serious (throttled tonight)"
    assert attribute([BASE] * 5, UNKNOWN).changes == ()  # unknown tonight is no change
    # Known nights count, unknown ones do not outvote them.
    (change,) = attribute([UNKNOWN, UNKNOWN, UNKNOWN, BASE], HOT).changes
    assert change.before == "nominal"


def test_a_latency_regression_on_a_throttled_night_is_attributed_to_the_heat():
    medians = [*quiet(20, sigma=0.01), 12.5, 12.5]
    h = history(medians, conditions=lambda i: HOT if i >= 20 else BASE)
    latency = next(f for f in findings(analyse([h])) if f.check is Check.LATENCY)
    assert latency.status is Status.REGRESSION
    assert latency.attribution.text() == "thermal state nominal → serious (throttled tonight)"


CLASSES = ("iPhone12,1", "iPhone14,5", "iPhone15,2")
HOT_CLASS = "iPhone14,5"


def test_a_class_running_hot_is_one_summary_naming_the_class_and_the_heat():
    fleet = [
        history(
            [*quiet(20, sigma=0.01, seed=m), 12.5, 12.5] if cls == HOT_CLASS
            else quiet(22, sigma=0.01, seed=m),
            series=f"model{m}", device_class=cls, seed=m,
            conditions=lambda i, cls=cls: HOT if cls == HOT_CLASS and i >= 20 else BASE,
        )
        for m in range(4)
        for cls in CLASSES
    ]  # fmt: skip
    (summary,) = group_findings("s", findings(analyse(fleet), night(21), alerts_only=True))
    assert summary.cause == (f"thermal state=serious@{HOT_CLASS}",)
    assert summary.title.startswith(
        f"{HOT_CLASS}, thermal state nominal → serious (throttled tonight): latency +25 %"
    )
    assert summary.series_count == 4


def test_two_classes_hot_the_same_night_are_two_summaries():
    fleet = [
        history([*quiet(20, sigma=0.01, seed=m), 12.5, 12.5], series=f"model{m}",
                device_class=cls, seed=m, conditions=lambda i: HOT if i >= 20 else BASE)
        for m in range(2)
        for cls in CLASSES[:2]
    ]  # fmt: skip
    summaries = group_findings("s", findings(analyse(fleet), night(21), alerts_only=True))
    assert sorted(s.cause for s in summaries) == [
        (f"thermal state=serious@{cls}",) for cls in CLASSES[:2]
    ]


def test_heat_on_an_upgrade_night_does_not_split_the_placement_summary():
    upgraded = replace(BASE, os_version="18.2", os_build="22C152")

    def conditions(cls: str):
        def at(i: int) -> Conditions:
            now = upgraded if i >= 21 else BASE
            return replace(now, thermal_state="serious") if cls == HOT_CLASS and i >= 21 else now

        return at

    def placement(i: int) -> dict[str, PlacedOp]:
        return {"conv_d": PlacedOp("gpu" if i >= 21 else "neuralEngine", "conv dilated")}

    fleet = [
        history(quiet(22, sigma=0.01, seed=m), series=f"model{m}", device_class=cls, seed=m,
                placement=placement, conditions=conditions(cls))
        for m in range(3)
        for cls in CLASSES
    ]  # fmt: skip
    alerting = findings(analyse(fleet), night(21), alerts_only=True)
    placement_summaries = [
        s for s in group_findings("s", alerting)
        if any(f.check is Check.PLACEMENT for f in s.findings)
    ]  # fmt: skip
    (summary,) = placement_summaries
    assert summary.series_count == 9  # all three classes, the hot one included
    assert "thermal" not in summary.title
    assert summary.title.startswith("OS iOS 18.1 (22B83) → iOS 18.2 (22C152): conv dilated")


def test_a_night_of_several_runs_is_as_hot_as_its_hottest():
    from orchestrator.regress.attribution import hottest

    assert hottest(["nominal", "serious", "fair"]) == "serious"
    assert hottest(["", "fair", ""]) == "fair"
    assert hottest(["", ""]) == ""
