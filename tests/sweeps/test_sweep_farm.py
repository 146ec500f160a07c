"""Issue 17's acceptance on a SIMULATED farm, through the CLI as a user runs it: a sweep of
3 models on 2 device classes, three nights back-filled with `sweep run --at`, its history
(3 nights × 3 models × 2 classes, each point with median, verdict, sha256 and OS build);
unchanged models reuse the first night's bisection; a replaced file is the same series with
a new sha256, a removed one a missing record with its reason; the report of a night shows
last night's median beside tonight's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from orchestrator.store import models as db
from tests.pipeline.farm import Farm, farm
from tests.sweeps.files import sweep_file

__all__ = ["farm"]  # the fixture: a farm with its coordinator running

XR, IPHONE12 = "iPhone11,8", "iPhone13,2"  # the XR on iOS 16: no compute plan, so bisected
MODELS = ("conv10x10", "conv10x10_dilated4", "conv_sandwich_dilated")
NIGHTS = ("2026-11-24T02:00", "2026-11-25T02:00", "2026-11-26T02:00")

pytestmark = [pytest.mark.slow]


def write_sweep(folder: Path, samples: dict[str, Path]) -> Path:
    return sweep_file(
        folder, samples, [f"{name}.mlpackage" for name in MODELS], name="vision-nightly",
        schedule='"0 2 * * *"', timezone="Europe/Berlin", devices=f'"{XR},{IPHONE12}"',
        compute_units="[all, cpuOnly]", iterations="5", bisect="auto",
    )  # fmt: skip


def run_night(farm: Farm, at: str, *, exit_code: int = 0) -> dict[str, Any]:
    out = farm.cli("sweep", "run", "vision-nightly", "--at", at, "--wait", "--json",
                   timeout=240, check=False)  # fmt: skip
    assert out.returncode == exit_code, out.stderr
    return dict(json.loads(out.stdout))


def history(farm: Farm, *args: str) -> list[dict[str, Any]]:
    out = farm.cli("sweep", "history", "vision-nightly", "--json", *args)
    body = json.loads(out.stdout)
    assert body["sweep"] == "vision-nightly"
    return list(body["points"])


def probe_runs(farm: Farm, job: str) -> int:
    import uuid

    with farm.sessions()() as session:
        runs = session.scalars(select(db.Run).where(db.Run.job_id == uuid.UUID(job)))
        return sum(1 for r in runs if r.purpose == "probe")


def test_three_nights_then_a_replaced_and_a_removed_model(farm, samples, tmp_path):
    farm.start_agent(f"{XR}@16.7.8=1,{IPHONE12}=1", wait_for=2)
    path = write_sweep(tmp_path / "sweeps", samples)
    added = farm.cli("sweep", "add", str(path))
    assert added.stdout.startswith("sweep vision-nightly: added"), added.stdout

    reports = [run_night(farm, at) for at in NIGHTS]
    assert all(r["status"] == "done" for r in reports), [r["status"] for r in reports]
    points = history(farm)
    assert len(points) == 3 * 3 * 2 * 2  # nights × models × classes × compute units
    assert {(p["night"], p["series"], p["device_class"]) for p in points} == {
        (at[:10], m, c) for at in NIGHTS for m in MODELS for c in (XR, IPHONE12)
    }
    for p in points:
        assert p["status"] == "ok", p
        assert p["median_ms"] > 0 and p["verdict"] in {"FULL", "PARTIAL", "NONE", "INCONCLUSIVE"}
        assert len(p["model_sha256"]) == 64 and p["os_build"] and p["runner_version"]
        assert p["simulated"] is True and p["udid"]
    xr_build = {p["os_build"] for p in points if p["device_class"] == XR}
    assert len(xr_build) == 1  # one OS build all along: the conditions did not change

    # Unchanged models are cheap: night 1 bisected on the XR, nights 2 and 3 reuse it.
    jobs = [r["job"] for r in reports]
    assert probe_runs(farm, jobs[0]) > 0
    assert [probe_runs(farm, j) for j in jobs[1:]] == [0, 0]
    bisected = [
        r for r in reports[1]["rows"] if r["bisection"] and r["bisection"]["state"] == "done"
    ]
    assert bisected and all(
        r["bisection"]["reused"] == r["bisection"]["signatures"] for r in bisected
    )
    # Timing is measured again each night all the same.
    first = {(r["series"], r["device_class"]): r for r in reports[0]["rows"]}
    for row in reports[1]["rows"]:
        assert row["latency_ms"]["all"]["count"] == 5
        # The report of a night: last night's median beside tonight's.
        assert row["last_night"] == {
            "night": NIGHTS[0][:10],
            "p50_ms": {u: first[(row["series"], row["device_class"])]["latency_ms"][u]["p50"]
                       for u in ("all", "cpuOnly")},
        }  # fmt: skip
    assert all(r["last_night"] is None for r in reports[0]["rows"])

    # One night per scheduled time: the same --at again is refused, in one line.
    again = farm.cli("sweep", "run", "vision-nightly", "--at", NIGHTS[0], check=False)
    assert again.returncode == 1 and len(again.stderr.splitlines()) == 1, again.stderr
    assert "already has its night of 2026-11-24T01:00:00+00:00" in again.stderr
    # The text forms: the report's last-night grid, the history table.
    table = farm.cli("report", jobs[1]).stdout
    assert f"Last night ({NIGHTS[0][:10]}) → tonight" in table
    assert "SIMULATED" in farm.cli("sweep", "history", "vision-nightly").stdout

    # Night 4: conv10x10 retrained (another file under its name), conv_sandwich removed.
    models = path.parent / "models"
    shutil.rmtree(models / "conv10x10.mlpackage")
    shutil.copytree(samples["mobilenetv2_block.mlpackage"], models / "conv10x10.mlpackage")
    shutil.rmtree(models / "conv_sandwich_dilated.mlpackage")
    out = run_night(farm, "2026-11-27T02:00", exit_code=4)  # a series missing: exit 4
    assert out["status"] == "done"
    night4 = history(farm, "--since", "2026-11-27")
    before = {p["model_sha256"] for p in points if p["series"] == "conv10x10"}
    replaced = [p for p in night4 if p["series"] == "conv10x10"]
    assert len(replaced) == 4 and all(p["status"] == "ok" for p in replaced)
    assert {p["model_sha256"] for p in replaced}.isdisjoint(before)
    gone = [p for p in night4 if p["series"] == "conv_sandwich_dilated"]
    assert {(p["device_class"], p["status"]) for p in gone} == {
        (XR, "missing"),
        (IPHONE12, "missing"),
    }
    assert all(p["reason"].startswith("model_missing:") for p in gone), gone
    assert all("conv_sandwich_dilated" in p["reason"] for p in gone)

    # Filters, and the CSV form from the same points.
    only = history(farm, "--model", "conv10x10", "--device-class", XR)
    assert {(p["series"], p["device_class"]) for p in only} == {("conv10x10", XR)}
    assert len(only) == 4 * 2
    csv_out = farm.cli("sweep", "history", "vision-nightly", "--csv", "--since", "2026-11-27")
    lines = csv_out.stdout.splitlines()
    assert lines[0].startswith("night,scheduled_for,job_id") and len(lines) == 1 + len(night4)

    shown = json.loads(farm.cli("sweep", "show", "vision-nightly", "--json").stdout)
    assert [n["scheduled_for"][:10] for n in shown["nights"]] == [
        "2026-11-27", "2026-11-26", "2026-11-25", "2026-11-24",
    ]  # fmt: skip
    assert shown["nights"][0]["missing"] == 2 and shown["next_fire"]
