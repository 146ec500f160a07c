"""Sweep files through the CLI with no farm: a bad file is one line per problem, exit 2,
and changes nothing stored; add/update says what changed; list, show, pause, resume and
remove; a night run needs a broker."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

GOOD = """\
name: vision-nightly
schedule: "0 2 * * *"
timezone: Europe/Berlin
models:
  - path: models/*.mlpackage
  - name: detector
    path: {detector}
devices: "A12,chip>=A14"
compute_units: [all, cpuOnly]
iterations: 20
"""

BAD = {
    "unknown key": ("colour: red\n", "anefarm: error: {file}: colour: unknown key"),
    "bad cron": ('schedule: "0 25 * * *"\n',
                 "anefarm: error: {file}: schedule: not a 5-field cron expression: '0 25 * * *'"),
    "unknown timezone": ("timezone: Mars/Olympus\n",
                         "anefarm: error: {file}: timezone: unknown timezone 'Mars/Olympus'"),
    "empty glob": ("models:\n  - path: nowhere/*.mlpackage\n",
                   "anefarm: error: {file}: models.0.path: no file matches 'nowhere/*.mlpackage'"),
    "unknown selector": ('devices: "A12,B52"\n', "anefarm: error: {file}: devices: unknown"),
    "bad regress setting": ("regress:\n  threshold: 2\n",
                            "anefarm: error: {file}: regress: threshold: Input should be less than 1"),
    "bad nested key": ("models:\n  - path: models/*.mlpackage\n    weight: 3\n",
                       "anefarm: error: {file}: models.0.weight: unknown key"),
}  # fmt: skip


def anefarm(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANEFARM_HOME": str(home)}
    env.pop("ANEFARM_BROKER_URL", None)
    env.pop("ANEFARM_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.fixture
def folder(tmp_path: Path, samples: dict[str, Path]) -> Path:
    (tmp_path / "models").mkdir()
    for name in ("conv10x10.mlpackage", "mobilenetv2_block.mlpackage"):
        shutil.copytree(samples[name], tmp_path / "models" / name)
    shutil.copytree(samples["conv10x10_dilated4.mlpackage"], tmp_path / "detector.mlpackage")
    return tmp_path


def good(folder: Path) -> str:
    return GOOD.format(detector=folder / "detector.mlpackage")


def with_override(text: str, override: str) -> str:
    """The good file with one top-level key replaced (or added) by ``override``."""
    key = override.split(":", maxsplit=1)[0]
    lines, skipping = [], False
    for line in text.splitlines():
        if line.startswith(f"{key}:"):
            skipping = True
            continue
        if skipping and line.startswith(" "):
            continue
        skipping = False
        lines.append(line)
    return "\n".join(lines) + "\n" + override


def listed(home: Path) -> list[dict[str, Any]]:
    out = anefarm(home, "sweep", "list", "--json")
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout)["sweeps"])


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_file_is_one_line_exit_2_and_changes_nothing(folder, case):
    home = folder / "home"
    (folder / "good.yaml").write_text(good(folder))
    assert anefarm(home, "sweep", "add", str(folder / "good.yaml")).returncode == 0
    before = json.loads(anefarm(home, "sweep", "show", "vision-nightly", "--json").stdout)
    override, expected = BAD[case]
    bad = folder / "bad.yaml"
    bad.write_text(with_override(good(folder), override))
    out = anefarm(home, "sweep", "add", str(bad))
    assert out.returncode == 2, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(expected.format(file=bad)), lines
    assert "Traceback" not in out.stderr and out.stdout == ""
    after = json.loads(anefarm(home, "sweep", "show", "vision-nightly", "--json").stdout)
    assert after == before


def test_several_problems_are_one_line_each(folder):
    bad = folder / "bad.yaml"
    bad.write_text(
        'name: x\nschedule: "nope"\ntimezone: Nowhere\nmodels: []\ndevices: A12\nfoo: 1\n'
    )
    out = anefarm(folder / "home", "sweep", "add", str(bad))
    assert out.returncode == 2
    lines = out.stderr.splitlines()
    assert [line.split(": ")[3] for line in lines] == ["schedule", "timezone", "models", "foo"]
    assert all(line.startswith(f"anefarm: error: {bad}: ") for line in lines)
    assert listed(folder / "home") == []


def test_not_yaml_and_a_missing_file(folder):
    bad = folder / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    out = anefarm(folder / "home", "sweep", "add", str(bad))
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1
    assert "not YAML" in out.stderr
    out = anefarm(folder / "home", "sweep", "add", str(folder / "none.yaml"))
    assert out.returncode == 2 and "no sweep file" in out.stderr
    assert len(out.stderr.splitlines()) == 1 and "(check the path" in out.stderr


def test_add_update_show_pause_resume_remove(folder):
    home = folder / "home"
    path = folder / "vision.yaml"
    path.write_text(good(folder))
    out = anefarm(home, "sweep", "add", str(path))
    assert out.stdout.splitlines() == ["sweep vision-nightly: added"]
    assert anefarm(home, "sweep", "add", str(path)).stdout.splitlines() == [
        "sweep vision-nightly: unchanged"
    ]
    path.write_text(good(folder).replace("iterations: 20", "iterations: 30")
                    .replace('"0 2 * * *"', '"30 3 * * 1-5"'))  # fmt: skip
    out = anefarm(home, "sweep", "add", str(path))
    assert out.stdout.splitlines() == [
        "sweep vision-nightly: updated (2 change(s))",
        "  schedule: 0 2 * * * → 30 3 * * 1-5",
        "  iterations: 20 → 30",
    ]
    shown = json.loads(anefarm(home, "sweep", "show", "vision-nightly", "--json").stdout)
    assert shown["schedule"] == "30 3 * * 1-5" and shown["timezone"] == "Europe/Berlin"
    assert shown["next_fire"].endswith(("+01:00", "+02:00")) and "T03:30:00" in shown["next_fire"]
    assert shown["definition"]["models"][1] == {
        "path": str(folder / "detector.mlpackage"), "name": "detector"
    }  # fmt: skip
    assert shown["nights"] == [] and shown["source_path"] == str(path)

    assert anefarm(home, "sweep", "pause", "vision-nightly").stdout.strip() == (
        "sweep vision-nightly: paused"
    )
    (entry,) = listed(home)
    assert entry["paused"] is True and entry["next_fire"] is None
    assert "already paused" in anefarm(home, "sweep", "pause", "vision-nightly").stdout
    anefarm(home, "sweep", "resume", "vision-nightly")
    assert listed(home)[0]["paused"] is False

    out = anefarm(home, "sweep", "run", "vision-nightly")
    assert out.returncode == 2 and "no broker configured" in out.stderr

    out = anefarm(home, "sweep", "remove", "vision-nightly")
    assert out.returncode == 0 and listed(home) == []
    out = anefarm(home, "sweep", "show", "vision-nightly")
    assert out.returncode == 1 and out.stderr.startswith(
        "anefarm: error: no sweep 'vision-nightly'"
    )


def test_series_names_must_be_unique(folder):
    path = folder / "twice.yaml"
    path.write_text(good(folder).replace("  - name: detector\n", "  - name: conv10x10\n"))
    out = anefarm(folder / "home", "sweep", "add", str(path))
    assert out.returncode == 2
    assert "series 'conv10x10' already comes from models.0" in out.stderr


def test_a_webhook_secret_is_never_printed(folder):
    # A Slack webhook's token is its path: `sweep add` (what changed) and `sweep show`
    # show the host and first segment only; the stored definition keeps the whole URL.
    home, path = folder / "home", folder / "vision.yaml"
    path.write_text(good(folder))
    assert anefarm(home, "sweep", "add", str(path)).returncode == 0
    hook = "https://hooks.slack.com/services/T0001/B0002/s3cr3tT0k3n"
    path.write_text(good(folder) + f"notify:\n  - webhook: {hook}\n    format: slack\n")
    outputs = [
        anefarm(home, "sweep", "add", str(path)),
        anefarm(home, "sweep", "show", "vision-nightly", "--json"),
        anefarm(home, "sweep", "show", "vision-nightly"),
    ]
    for out in outputs:
        assert out.returncode == 0, out.stderr
        assert "s3cr3t" not in out.stdout + out.stderr
    assert "notify:" in outputs[0].stdout  # the change is still reported
    shown = json.loads(outputs[1].stdout)["definition"]["notify"][0]["webhook"]
    assert shown == "https://hooks.slack.com/services/…"
