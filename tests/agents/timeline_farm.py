"""The farm file with a timeline that the SIMULATED-nights tests share
(test_simulation_timeline, test_simulation_nights, test_simulation_nights_e2e): two A12s
and an A17, and from night ``N`` on an OS upgrade, a slow-down, an op moved off the ANE, a
compile failure and two nights without the A12s."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from agents.devices.simulated import SimulatedDevice, build_farm
from orchestrator.modelkit.inventory import ModelInventory
from orchestrator.protocol import RunnerResult
from tests.agents.models import manifest

A12, A17 = "iPhone11,8", "iPhone16,1"
N = date(2026, 3, 18)  # the night the timeline's changes start
BEFORE, AFTER = N - timedelta(days=1), N + timedelta(days=3)
FARM = f"""\
seed: 3
devices:
  - {{product_type: "{A12}", count: 2}}
  - {{product_type: "{A17}"}}
noise: {{seed: 7, run_to_run_sigma: 0}}
timeline:
  - {{from: {N}, os_upgrade: {{class: "{A17}", version: "26.2", build: 23C55}}}}
  - {{from: {N}, slow: {{class: "{A12}", factor: 1.15}}}}
  - {{from: {N}, off_ane: {{op: conv_dilated, os_build: 23C55}}}}
  - {{from: {N}, compile_fails: {{model: "convnet*", os_build: 23C55}}}}
  - {{from: {N}, remove: {{class: "{A12}"}}, until: {N + timedelta(days=2)}}}
"""


def farm_file(tmp_path: Path, text: str = FARM, name: str = "farm.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def devices(tmp_path: Path, text: str = FARM) -> dict[str, SimulatedDevice]:
    return {d.identity.udid: d for d in build_farm(farm_file(tmp_path, text))}


def run(
    dev: SimulatedDevice, model: ModelInventory, night: date | None, batch: str = "b"
) -> RunnerResult:
    dev.at_night(night)
    return dev.simulate_batch(manifest(model, batch_id=batch), model, 600)[0]


def measured(result: RunnerResult) -> dict[str, object]:
    return result.model_dump(exclude={"started_at", "finished_at"})
