"""``anefarm inspect | lint | probes | samples``: model analysis, no device needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from orchestrator.errors import ConfigError
from orchestrator.render.model_tables import lint_renderables, ops_table

if TYPE_CHECKING:
    from orchestrator.modelkit.inventory import LintFinding

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
LINT_FOUND_EXIT = 3  # something is predicted off the ANE (CI scripts gate on it)


def _output_dir(path: Path) -> Path:
    """Create ``path`` before the slow work starts (coremltools loads in ~3 s), so an
    output place that cannot work fails at once, naming it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".anefarm-write-test"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise ConfigError(
            f"cannot write to {path}: {error.strerror or error}",
            hint="choose a directory you can write to; it is created when missing",
        ) from error
    return path


def inspect_cmd(
    model: Annotated[Path, typer.Argument(help=".mlmodel or .mlpackage")], as_json: JsonOpt = False
) -> None:
    """Format, inputs/outputs, fingerprint and the op inventory with shapes and FLOPs."""
    from orchestrator.modelkit import inspect_model
    from orchestrator.modelkit.flexible import describe

    inventory = inspect_model(model)
    if as_json:
        typer.echo(json.dumps(inventory.to_json(), indent=2))
        return
    console = Console(soft_wrap=True)  # text lines are not cut; the table still fits
    facts = (f"{inventory.format} / {inventory.model_type}, spec {inventory.spec_version}"
             f" ({inventory.min_deployment_target}+), {inventory.size_bytes:,} bytes")  # fmt: skip
    # The facts under the name when both do not fit one line (80 columns, a pipe).
    gap = "  " if len(model.name) + 2 + len(facts) <= console.width else "\n  "
    console.print(f"[bold]{escape(model.name)}[/bold]{gap}{facts}")
    # In full: the same sha256 as `artifacts add`, the report and the database show.
    console.print(f"  sha256 {inventory.sha256}", soft_wrap=True)
    for feature in inventory.inputs:
        options = f" ({describe(feature.shapes)})" if feature.shapes else ""
        console.print(
            f"  input  {feature.name}: {feature.type} {feature.shape} flexible={feature.flexible}"
            + options
        )
    console.print(ops_table(inventory, console.width))  # fits 80 columns and pipes too
    cost = _flops_text(inventory.total_flops) if inventory.flops_known else "cost unknown"
    console.print(f"{len(inventory.ops)} compute ops, {inventory.const_count} constants, "
                  f"{cost}, {inventory.total_weight_bytes:,} weight bytes")  # fmt: skip
    if inventory.flops_note:
        console.print(f"note: {inventory.flops_note}")


def _flops_text(flops: int) -> str:
    """A cost a person reads: a tiny model is not "0.0 MFLOPs"."""
    for scale, unit in ((1e9, "GFLOPs"), (1e6, "MFLOPs"), (1e3, "kFLOPs")):
        if flops >= scale:
            return f"{flops / scale:.1f} {unit}"
    return f"{flops} FLOPs"


def lint_cmd(
    model: Annotated[Path, typer.Argument(help=".mlmodel or .mlpackage")],
    chip: Annotated[
        list[str] | None,
        typer.Option(
            "--chip", help="Chips to predict for: A12,A14 or repeated (default: every chip)"
        ),
    ] = None,
    os_version: Annotated[
        str | None, typer.Option("--os", help="Only rules that apply to this OS (e.g. 17.4)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Predict, per op and chip, what will not run on the ANE, why, and how to fix it.

    Notes (patterns nearly every model of a kind has, such as a TensorFlow input transpose)
    are shown but predict nothing. Exit status 0: nothing predicted off the ANE; 3: something
    is; 1: bad model; 2: usage (an unknown chip names the close ones)."""
    from orchestrator import catalog
    from orchestrator.modelkit import inspect_model
    from orchestrator.modelkit.rules import ALL_CHIPS, NOTE, confidence, lint, parse_os

    # Names first: a typo is reported before coremltools takes seconds to load.
    chips = [c.name for c in catalog.chips(chip)] if chip is not None else sorted(ALL_CHIPS)
    if os_version is not None:
        parse_os(os_version)
    inventory = inspect_model(model)
    findings = lint(inventory, chips, os_version=os_version, notes=True)
    warnings = [f for f in findings if f.severity != NOTE]
    notes = [f for f in findings if f.severity == NOTE]
    if as_json:
        typer.echo(json.dumps({
            "model": model.name, "sha256": inventory.sha256, "chips": chips, "os": os_version,
            "off_ane_predicted": bool(warnings), "warnings": len(warnings), "notes": len(notes),
            "flops_known": inventory.flops_known, "flops_note": inventory.flops_note,
            # "prediction" per finding: does it predict the op off the ANE (a note does not).
            "findings": [{**f.to_json(), "prediction": f.severity != NOTE,
                          "confidence": confidence(f)} for f in findings],
        }, indent=2))  # fmt: skip
    else:
        _lint_text(model.name, chips if chip is not None else ["any chip"], warnings, notes)
        if inventory.flops_note:  # e.g. a flexible input: costed at its default shape
            typer.echo(f"note: {inventory.flops_note}")
    if warnings:
        raise typer.Exit(LINT_FOUND_EXIT)


def _lint_text(
    name: str, chips: list[str], warnings: list[LintFinding], notes: list[LintFinding]
) -> None:
    from orchestrator.modelkit.rules import confidence

    if not warnings:
        typer.echo(f"prediction: nothing in {name} is expected off the ANE on {', '.join(chips)}")
    else:
        console = Console()
        for part in lint_renderables(name, warnings, console.width, confidence):
            console.print(part)
        typer.echo("These are predictions from public reports; real devices have the last word.")
    # One line per op and rule, its chips together: a note repeated per chip is noise too.
    grouped: dict[tuple[str, str, str], list[LintFinding]] = {}
    for f in notes:
        grouped.setdefault((f.rule_id, f.op_name, f.op_type), []).append(f)
    for same in grouped.values():
        f, on = same[0], ", ".join(n.chip for n in same)
        typer.echo(f"note ({on}; not counted): {f.op_name} ({f.op_type}): {f.reason}"
                   f" [{f.rule_id}]; fix: {f.fix}")  # fmt: skip


def probes_cmd(
    model: Annotated[Path, typer.Argument(help=".mlmodel or .mlpackage")],
    outdir: Annotated[Path, typer.Argument(help="Directory for the probe models and index.json")],
    prefix: Annotated[
        int | None,
        typer.Option(help="Instead: write the model's first N ops as one model (prefix search)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write one single-op probe model per distinct op signature, and index.json."""
    from orchestrator.modelkit import write_prefix, write_probes

    _output_dir(outdir)
    if prefix is not None:
        written = write_prefix(model, prefix, outdir)
        typer.echo(
            json.dumps({"prefix": prefix, "model": str(written)}) if as_json else str(written)
        )
        return
    index = write_probes(model, outdir)
    if as_json:
        typer.echo(json.dumps(index.to_json(), indent=2))
        return
    ops = sum(len(p.source_ops) for p in index.probes)
    typer.echo(f"{len(index.probes)} probes for {ops} ops of {model.name} in {outdir}")
    for skipped in index.skipped:
        typer.echo(f"  no probe for {skipped.op_name} ({skipped.op_type}): {skipped.reason}")


def samples_cmd(
    outdir: Annotated[Path, typer.Argument(help="Directory to write the sample models into")],
    small: Annotated[bool, typer.Option(help="64×64 inputs instead of 500×500 (faster)")] = False,
) -> None:
    """Write the deterministic sample models (the write-up pair, LSTM, attention, …)."""
    from orchestrator.modelkit import write_samples

    for path in write_samples(_output_dir(outdir), small=small):
        typer.echo(str(path))


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect_cmd)
    app.command("lint")(lint_cmd)
    app.command("probes")(probes_cmd)
    app.command("samples")(samples_cmd)
