"""The launchd property list of the agent supervisor: valid, restarts, logs, and gives
workers time to finish a batch before launchd kills them."""

from __future__ import annotations

import plistlib
from pathlib import Path

from agents.supervisor import STOP_GRACE_S
from orchestrator.settings import Settings

PLIST = Path(__file__).parents[2] / "deploy" / "launchd" / "org.anefarm.agent.plist"


def load() -> dict[str, object]:
    with PLIST.open("rb") as handle:
        return plistlib.load(handle)


def test_it_runs_the_ios_agent_supervisor() -> None:
    plist = load()
    assert plist["Label"] == "org.anefarm.agent" == PLIST.stem
    program = plist["ProgramArguments"]
    assert isinstance(program, list) and Path(program[0]).name == "anefarm"
    assert program[1:] == ["agent", "--ios"]
    assert plist["RunAtLoad"] is True


def test_restart_policy_and_graceful_stop() -> None:
    plist = load()
    assert plist["KeepAlive"] == {"SuccessfulExit": False}  # restart unless stopped cleanly
    assert isinstance(plist["ThrottleInterval"], int) and plist["ThrottleInterval"] >= 5
    exit_timeout = plist["ExitTimeOut"]
    assert isinstance(exit_timeout, int) and exit_timeout > STOP_GRACE_S


def test_logs_go_to_absolute_paths_in_one_directory() -> None:
    plist = load()
    out, err = Path(str(plist["StandardOutPath"])), Path(str(plist["StandardErrorPath"]))
    assert out.is_absolute() and err.is_absolute() and out != err
    assert out.parent == err.parent and "Logs" in out.parts


def test_environment_names_real_settings() -> None:
    env = load()["EnvironmentVariables"]
    assert isinstance(env, dict)
    fields = {f"ANEFARM_{name.upper()}" for name in Settings.model_fields}
    anefarm = {key for key in env if key.startswith("ANEFARM_")}
    assert anefarm and anefarm <= fields, anefarm - fields
    assert "ANEFARM_IOS_RUNNER_IPA" in anefarm
