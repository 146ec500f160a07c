"""The timeline of a SIMULATED farm file (agents/devices/simulation/nights.py and
nights_file.py): what each device gets from it, and its errors, one line naming the entry
and the key, from the parser and from the CLI."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from agents.devices.simulated import build_farm
from agents.devices.simulation.farm import DeviceSpec, parse_farm
from orchestrator.errors import UsageError
from tests.agents.timeline_farm import A12, AFTER, BEFORE, N, devices, farm_file


def test_a_timeline_reaches_every_device_and_a_night_picks_its_state(tmp_path: Path) -> None:
    specs = parse_farm(farm_file(tmp_path))
    assert [s.timeline is specs[0].timeline for s in specs] == [True] * 3
    timeline = specs[0].timeline
    assert timeline is not None and len(timeline.timeline) == 5
    assert [e.action for e in timeline.timeline] == [
        "os_upgrade", "slow", "off_ane", "compile_fails", "remove",
    ]  # fmt: skip
    a17 = devices(tmp_path)["SIM-iPhone16-1-0"]
    assert a17.at_night(BEFORE).os_build == a17.at_night(None).os_build != "23C55sim"
    assert (a17.at_night(N).os_version, a17.at_night(N).os_build) == ("26.2", "23C55sim")
    assert a17.at_night(N).off_ane == {"conv_dilated"}
    a12 = devices(tmp_path)["SIM-iPhone11-8-1"]
    assert [a12.at_night(n).present for n in (BEFORE, N, N + timedelta(days=1), AFTER)] == [
        True, False, False, True,
    ]  # fmt: skip
    assert [a12.at_night(n).slow for n in (BEFORE, AFTER)] == [1.0, 1.15]


def test_a_farm_without_nights_is_unchanged(tmp_path: Path) -> None:
    plain = 'devices: [{product_type: "iPhone11,8"}]\n'
    assert parse_farm(farm_file(tmp_path, plain))[0].timeline is None
    assert parse_farm("iPhone11,8=1")[0] == DeviceSpec(A12, "18.7", 0)


ENTRY = 'devices: [{{product_type: "iPhone11,8"}}]\ntimeline:\n  - {entry}\n'
# A bad timeline entry, alone in a one-device farm, and what the one line says after
# "<farm file> timeline entry 1: ".
BAD_ENTRIES = [
    ('{from: 2026-03-18, slow: {class: "iPhone11,8", factor: 0}}',
     "slow.factor: Input should be greater than 0"),
    ('{from: 2026-03-18, slow: {class: "iPhone11,8", speed: 2}}',
     "slow: unknown keys ['speed'] (allowed: class, factor)"),
    ("{from: 2026-03-18, slo: {}}",
     "unknown keys ['slo'] (allowed: from, until, os_upgrade, slow, off_ane, compile_fails,"
     " add, remove, hot)"),
    ('{slow: {class: "iPhone11,8", factor: 2}}',
     "from: missing"),
    ('{from: 20260318, remove: {class: "iPhone11,8"}}',
     "from: must be a date like 2026-03-18, not 20260318"),
    ("{from: 2026-03-18}",
     "needs exactly one of os_upgrade, slow, off_ane, compile_fails, add, remove, hot, has none"),
    ('{from: 2026-03-18, add: {class: "iPhone11,8"}, remove: {class: "iPhone11,8"}}',
     "needs exactly one of os_upgrade, slow, off_ane, compile_fails, add, remove, hot,"
     " has ['add', 'remove']"),
    ('{from: 2026-03-18, until: 2026-03-18, remove: {class: "iPhone11,8"}}',
     "until 2026-03-18 is not after from 2026-03-18"),
    ('{from: 2026-03-18, until: 2026-03-19, add: {class: "iPhone11,8"}}',
     "add has no until: write a remove entry from that night"),
    ('{from: 2026-03-18, os_upgrade: {class: "iPhone11,8", version: "18.2",'
     ' udid: SIM-iPhone11-8-1}}',
     "os_upgrade.udid 'SIM-iPhone11-8-1' is not a device of class iPhone11,8 here"
     " (that class has SIM-iPhone11-8-0)"),
    ('{from: 2026-03-18, remove: {class: "iPhone12,1"}}',
     "remove.class 'iPhone12,1' is not a device class of this farm (the farm has iPhone11,8;"
     " add its devices to 'devices')"),
    ('{from: 2026-03-18, os_upgrade: {class: "iPhone11,8", version: 19}}',
     "os_upgrade.version: iPhone11,8 (iPhone XR) runs OS 12.0 to 18.x, not 19"
     ' (quote it: version: "18.2")'),
    ('{from: 2026-03-18, os_upgrade: {class: "iPhone11,8", version: "18.2",'
     " build: 22c152}}",
     "os_upgrade.build: String should match pattern"),
    ("{from: 2026-03-18, off_ane: {op: conv_dilatd}}",
     "off_ane.op: unknown op 'conv_dilatd' (did you mean conv_dilated"),
    ("{from: 2026-03-18, compile_fails: {os_build: 22C152}}",
     "compile_fails: give model (a file name pattern) or model_sha256, one of them"),
    ('{from: 2026-03-18, compile_fails: {model_sha256: "XYZ"}}',
     "compile_fails.model_sha256: String should match pattern"),
    ("- nested",
     "must be a mapping, not ['nested']"),
]  # fmt: skip
# A bad timeline or noise section as a whole, and the start of its one line.
BAD_SECTIONS = [
    ('devices: [{product_type: "iPhone11,8"}]\ntimeline: {from: 2026-03-18}\n',
     "{path}: timeline must be a list of entries"),
    ('devices: [{product_type: "iPhone11,8"}]\nnoise: {run_to_run_sigma: 2}\n',
     "farm file {path}: noise.run_to_run_sigma: Input should be less than or equal to 1"),
    ('devices: [{product_type: "iPhone11,8"}]\nnoise: {sigma: 0.1}\n',
     "farm file {path}: noise: unknown keys ['sigma'] (allowed: seed, run_to_run_sigma)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [(ENTRY.format(entry=entry), "{path} timeline entry 1: " + message)
     for entry, message in BAD_ENTRIES] + BAD_SECTIONS,
)  # fmt: skip
def test_a_bad_timeline_is_one_line_naming_the_entry_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = farm_file(tmp_path, text)
    with pytest.raises(UsageError) as caught:
        parse_farm(path)
    line = caught.value.one_line()
    assert "\n" not in line
    assert line.startswith(message.format(path=path)), line


@pytest.mark.slow  # a CLI process and the sample models
def test_the_cli_says_what_is_wrong_with_a_timeline_in_one_line(
    tmp_path: Path, samples: dict[str, Path]
) -> None:
    import os
    import subprocess
    import sys

    bad = farm_file(tmp_path, ENTRY.format(entry='{from: 2026-03-18, slow: {class: "iPhone11,8"}}'))
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator", "profile", str(samples["conv10x10.mlpackage"]),
         "--simulate", str(bad)],
        env={**os.environ, "ANEFARM_HOME": str(tmp_path / "home")},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == f"anefarm: error: {bad} timeline entry 1: slow.factor: missing"


def test_the_devices_are_judged_before_the_timeline(tmp_path: Path) -> None:
    path = farm_file(tmp_path, "timeline: [{from: 2026-03-18}]\ndevices: []\n")
    with pytest.raises(UsageError, match="needs a non-empty 'devices' list"):
        parse_farm(path)


def test_the_farm_files_of_the_docs_are_valid(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "simulation.md"
    section = docs.read_text().split("## Many nights", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in section.split("```yaml\n")[1:]]
    assert len(blocks) >= 2
    for i, block in enumerate(blocks):
        specs = parse_farm(farm_file(tmp_path, block, f"doc{i}.yaml"))
        assert specs[0].timeline is not None and specs[0].timeline.timeline
    # The issue-18 farm: the slowdown from night 18, the new build and the moved op from 21.
    farm = {d.identity.udid: d for d in build_farm(tmp_path / "doc1.yaml")}
    a15 = farm["SIM-iPhone14-2-0"]
    assert [a15.at_night(date(2026, 3, d)).slow for d in (17, 18)] == [1.0, 1.15]
    states = [a15.at_night(date(2026, 3, d)) for d in (20, 21)]
    assert [(s.os_build, s.off_ane) for s in states] == [
        (states[0].os_build, frozenset()),
        ("23C55sim", frozenset({"conv_dilated"})),
    ]
