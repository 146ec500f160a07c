"""The verdict on simulated A12 devices with the real lint rules: the write-up's conv pair."""

from __future__ import annotations

import pytest

from agents.devices.simulated import build_farm
from orchestrator.modelkit.inventory import ModelInventory
from orchestrator.modelkit.rules import lint
from orchestrator.protocol import ComputeUnit, EvidenceSource, Verdict, VerdictKind
from orchestrator.verdict import decide
from tests.agents.models import manifest, write_up_conv

XR = "iPhone11,8"


def verdict_on_xr(model: ModelInventory, os_version: str | None = None) -> Verdict:
    spec = f"{XR}@{os_version}=1" if os_version else f"{XR}=1"
    runner, _truth = build_farm(spec, seed=0)[0].simulate_batch(manifest(model), model, 600)
    return decide(runner, device_class=XR, chip="A12", simulated=True, lint=lint(model, ["A12"]))


def test_plain_conv_is_full_on_a12_by_plan() -> None:
    verdict = verdict_on_xr(write_up_conv())
    assert verdict.plan_available and verdict.verdict is VerdictKind.FULL
    assert not verdict.plan_timing_disagree


def test_dilated_conv_is_off_the_ane_on_a12_with_the_lint_reason() -> None:
    verdict = verdict_on_xr(write_up_conv(dilation=4))
    assert verdict.verdict is not VerdictKind.FULL and not verdict.plan_timing_disagree
    conv = next(o for o in verdict.ops_off_ane if o.name == "conv_1")
    assert (conv.unit, conv.source) == (ComputeUnit.GPU, EvidenceSource.PLAN)
    assert "dilated (atrous) convolution" in conv.reason and "non-dilated" in conv.fix


@pytest.mark.parametrize(("dilation", "expected"), [(1, VerdictKind.FULL), (4, VerdictKind.NONE)])
def test_the_same_pair_by_timing_on_ios_16(dilation: int, expected: VerdictKind) -> None:
    verdict = verdict_on_xr(write_up_conv(dilation=dilation), "16.7.8")
    assert not verdict.plan_available and verdict.verdict is expected
    if dilation > 1:
        [conv] = verdict.ops_off_ane
        assert (conv.name, conv.source) == ("conv_1", EvidenceSource.LINT)
