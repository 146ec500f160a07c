"""SIMULATED nights end to end: real Redis, a coordinator and Celery workers on a farm file
with a timeline — a RunBatch with a night through ``dispatch.submit``, and three
``anefarm sweep run --at`` nights whose ``sweep history`` shows each change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.agents.timeline_farm import A12, A17, BEFORE, N, farm_file
from tests.pipeline.farm import Farm, farm
from tests.sweeps.files import sweep_file

__all__ = ["farm"]  # the fixture: a farm with its coordinator running

pytestmark = [pytest.mark.slow]

E2E_FARM = f"""\
devices: [{{product_type: "{A17}"}}]
noise: {{seed: 7}}
timeline:
  - {{from: {N}, os_upgrade: {{class: "{A17}", version: "26.2", build: 23C55}}}}
  - {{from: {N}, off_ane: {{op: conv_dilated, os_build: 23C55}}}}
"""


def test_a_night_after_the_os_upgrade_moves_the_dilated_conv_off_the_ane_end_to_end(
    farm: Farm, tmp_path: Path, samples: dict[str, Path]
) -> None:
    from orchestrator.dispatch import SubmitOptions, prepare, submit
    from orchestrator.protocol.transport import create_app

    farm.start_agent(str(farm_file(tmp_path, E2E_FARM)), wait_for=1)
    settings = farm.settings()
    app = create_app(settings)
    model = samples["conv10x10_dilated4.mlpackage"]
    options = SubmitOptions(selector=A17, iterations=20, warmup=2, bisect="never")
    rows = {}
    for night in (BEFORE, N):  # what a sweep's night does: RunSpec.night set
        prepared = prepare([model], options, None)
        prepared.spec = prepared.spec.model_copy(update={"night": night})
        job = submit(prepared, settings=settings, sessions=farm.sessions(), app=app).job_id
        rows[night] = farm.wait_job(str(job))["rows"][0]
    before, after = rows[BEFORE], rows[N]
    assert (before["os_version"], after["os_version"]) == ("26.1", "26.2")
    assert after["os_build"] == "23C55sim" != before["os_build"]
    assert before["verdict"] == "FULL" and not before["ops_off_ane"]
    assert after["verdict"] in {"PARTIAL", "NONE"}
    # The conv leaves the ANE; the casts around it follow it to the GPU (one region).
    moved = {op["type"]: op["unit"] for op in after["ops_off_ane"]}
    assert moved.get("conv") == "gpu", after["ops_off_ane"]
    assert before["simulated"] is after["simulated"] is True


SWEEP_NIGHTS = ("2026-11-24T02:00", "2026-11-25T02:00", "2026-11-26T02:00")
SWEEP_FARM = f"""\
devices: [{{product_type: "{A12}"}}, {{product_type: "{A17}"}}]
noise: {{run_to_run_sigma: 0}}
timeline:
  - {{from: 2026-11-25, os_upgrade: {{class: "{A17}", version: "26.2", build: 23C55}}}}
  - {{from: 2026-11-25, off_ane: {{op: conv_dilated, os_build: 23C55}}}}
  - {{from: 2026-11-25, slow: {{class: "{A12}", factor: 1.5}}}}
  - {{from: 2026-11-26, remove: {{class: "{A12}"}}}}
"""


def test_sweep_nights_on_a_timeline_farm_show_each_change_in_the_history(
    farm: Farm, tmp_path: Path, samples: dict[str, Path]
) -> None:
    """`anefarm sweep run --at` (orchestrator/sweeps sets RunSpec.night) over three nights."""
    sweep = sweep_file(
        tmp_path, samples, ["conv10x10_dilated4.mlpackage"], name="sim-nights",
        schedule='"0 2 * * *"', devices=f'"{A12},{A17}"', compute_units="[all]",
        iterations="20", bisect="never",
    )  # fmt: skip
    farm.start_agent(str(farm_file(tmp_path, SWEEP_FARM)), wait_for=2)
    farm.cli("sweep", "add", str(sweep))
    for at in SWEEP_NIGHTS:
        farm.cli("sweep", "run", "sim-nights", "--at", at, "--wait", check=False, timeout=240)
    out = farm.cli("sweep", "history", "sim-nights", "--json")
    points = {(p["night"], p["device_class"]): p for p in json.loads(out.stdout)["points"]}
    n1, n2, n3 = (at[:10] for at in SWEEP_NIGHTS)
    # The OS upgrade and the op it moves off the ANE, from their night on.
    assert points[(n1, A17)]["os_build"] != "23C55sim"
    assert points[(n2, A17)]["os_build"] == points[(n3, A17)]["os_build"] == "23C55sim"
    assert points[(n1, A17)]["verdict"] == "FULL"
    assert points[(n2, A17)]["verdict"] in {"PARTIAL", "NONE"}
    # The SIMULATED slowdown of the A12 (no run-to-run noise in this farm).
    ratio = points[(n2, A12)]["median_ms"] / points[(n1, A12)]["median_ms"]
    assert ratio == pytest.approx(1.5, rel=0.05)
    # The A12 removed on night 3: a hole with its cause.
    gone = points[(n3, A12)]
    assert gone["status"] == "missing", gone
    assert gone["reason"].startswith("device_class_absent: "), gone
    assert f"not in the farm on {n3}" in gone["reason"], gone
    # Not the device's fault: one attempt, and nothing counted against the device.
    assert len(farm.attempts(str(gone["run_id"]))) == 1
    from orchestrator.store import models as db

    with farm.sessions()() as session:
        a12 = session.scalars(select(db.Device).where(db.Device.product_type == A12)).all()
        assert a12 and all(d.infra_failures_in_row == 0 for d in a12)
