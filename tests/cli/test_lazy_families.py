"""`anefarm <command>` registers only the families that own the command (the map
``orchestrator.cli.OWNERS``), so a short command does not import the others: the map must
name, for every top-level command, each family that registers it or adds a subcommand to
it, or that command would be missing a subcommand (or fall back to registering all)."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

import orchestrator.cli as cli
from tests.cli.conftest import REPO_ROOT, anefarm, clean_env


def _mounted_groups() -> dict[int, tuple[str, typer.Typer]]:
    """Every group of the full CLI by the identity of its Typer: families add
    subcommands to groups another family mounts (`devices`, `sweep`)."""
    cli._register(cli.FAMILIES)  # idempotent, as main() is
    groups = {}
    for info in cli.app.registered_groups:
        assert info.name is not None and info.typer_instance is not None
        groups[id(info.typer_instance)] = (info.name, info.typer_instance)
    return groups


def _contributions(family: str) -> set[str]:
    """The top-level names ``family.register`` adds a command or subcommand to, on a
    fresh Typer; the shared groups are put back as they were."""
    register = importlib.import_module(f"orchestrator.cli.{family}").register
    groups = _mounted_groups()
    sizes = {key: len(group.registered_commands) for key, (_, group) in groups.items()}
    probe = typer.Typer()
    try:
        register(probe)
        names = {info.name for info in probe.registered_commands}
        names |= {info.name for info in probe.registered_groups}
        for key, (name, group) in groups.items():
            if len(group.registered_commands) > sizes[key]:
                names.add(name)
    finally:
        for key, (_, group) in groups.items():
            del group.registered_commands[sizes[key] :]
    assert None not in names, f"{family} registers a command without a name"
    return {name for name in names if name is not None}


def test_every_module_with_a_register_is_a_family() -> None:
    modules = {
        info.name
        for info in pkgutil.iter_modules(cli.__path__)
        if hasattr(importlib.import_module(f"orchestrator.cli.{info.name}"), "register")
    }
    assert modules == set(cli.FAMILIES)


@pytest.mark.parametrize("family", cli.FAMILIES)
def test_what_a_family_registers_maps_to_it(family: str) -> None:
    names = _contributions(family)
    assert names, f"{family} registers nothing"
    unmapped = sorted(name for name in names if family not in cli.OWNERS.get(name, ()))
    assert not unmapped, f"add {family!r} to OWNERS[...] of {unmapped} in orchestrator/cli"


def test_every_owner_in_the_map_registers_its_command() -> None:
    contributions = {family: _contributions(family) for family in cli.FAMILIES}
    wrong = sorted(
        (name, family)
        for name, families in cli.OWNERS.items()
        for family in families
        if family not in contributions or name not in contributions[family]
    )
    assert not wrong, f"these families do not register these commands: {wrong}"


def test_broker_first_commands_are_wrapped_once() -> None:
    cli._register(cli.FAMILIES)
    for info in cli.app.registered_commands:
        wrapped = getattr(info.callback, "__wrapped__", None)
        if info.name in cli.BROKER_FIRST:
            assert wrapped is not None and not hasattr(wrapped, "__wrapped__"), info.name
        else:
            assert wrapped is None, info.name


def _run_main(home: Path, *argvs: list[str]) -> tuple[list[str], set[str]]:
    """``main(argv)`` for each argv in turn in one new interpreter: what each printed on
    stdout, and the modules loaded at the end."""
    code = "\n".join([
        "import contextlib, io, json, sys",
        "from orchestrator.cli import main",
        "printed = []",
        f"for argv in {json.dumps([list(argv) for argv in argvs])}:",
        "    out = io.StringIO()",
        "    with contextlib.redirect_stdout(out):",
        "        try:",
        "            main(argv)",
        "        except SystemExit:",
        "            pass",
        "    printed.append(out.getvalue())",
        "print(json.dumps([printed, sorted(sys.modules)]))",
    ])  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=clean_env(home, COLUMNS="100"),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    printed, modules = json.loads(out.stdout.strip().splitlines()[-1])
    return printed, set(modules)


@pytest.mark.parametrize(
    "argv", [["report", "nope"], ["status"], ["devices", "--help"], ["alerts", "--help"]]
)
def test_a_command_imports_only_its_families(argv: list[str], tmp_path: Path) -> None:
    _, modules = _run_main(tmp_path, argv)
    owners = cli.OWNERS[argv[0]]
    for family in cli.FAMILIES:
        loaded = f"orchestrator.cli.{family}" in modules
        # alerts adds `sweep report` and `sweep baseline`: it imports the sweep group.
        needed = family in owners or (family == "sweeps" and "alerts" in owners)
        assert loaded == needed, (argv, family, loaded)


def test_help_after_a_short_command_is_the_same(tmp_path: Path) -> None:
    # main() again in the same process registers the other families after the first
    # one's: the commands are still listed in the order of FAMILIES.
    (later, _, _), _ = _run_main(tmp_path, ["--help"], ["sweep", "list"], ["report", "nope"])
    (_, _, after_short), _ = _run_main(tmp_path, ["sweep", "list"], ["report", "nope"], ["-h"])
    assert "Commands" in later and "redis" in later and "alerts" in later
    assert after_short == later


def test_a_misspelt_command_still_gets_suggestions(tmp_path: Path) -> None:
    out = anefarm("repot", "nope", home=tmp_path)
    assert out.returncode == 2
    assert out.stderr == (
        "anefarm: error: No such command 'repot'. Did you mean 'report'? (see `anefarm -h`)\n"
    )
