"""Attribution: what differed between the baseline's nights and the night of the change."""

from __future__ import annotations

from dataclasses import replace

from orchestrator.regress import Check, Conditions, Status, analyse, findings
from orchestrator.regress.attribution import attribute
from tests.regress.factory import BASE, history, quiet


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
