"""``anefarm inspect | lint | probes | samples``: model analysis, no device needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.errors import ConfigError

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

    inventory = inspect_model(model)
    if as_json:
        typer.echo(json.dumps(inventory.to_json(), indent=2))
        return
    console = Console()
    console.print(f"[bold]{model.name}[/bold]  {inventory.format} / {inventory.model_type}, "
                  f"spec {inventory.spec_version} ({inventory.min_deployment_target}+), "
                  f"{inventory.size_bytes:,} bytes, sha256 {inventory.sha256[:16]}…")  # fmt: skip
    for feature in inventory.inputs:
        console.print(
            f"  input  {feature.name}: {feature.type} {feature.shape} flexible={feature.flexible}"
        )
    table = Table("#", "name", "type", "kind", "in", "out", "params", "MFLOPs", "weights")
    for op in inventory.ops:
        mflops = "unknown" if op.flops is None else f"{op.flops / 1e6:.2f}"
        shapes = lambda ts: ", ".join(str(t.shape) if t.shape else "unknown" for t in ts)  # noqa: E731
        params = ", ".join(f"{k}={v}" for k, v in op.params.items() if k != "weight_shape")
        table.add_row(str(op.index), op.name, op.type, op.kind, shapes(op.inputs), shapes(op.outputs),
                      params[:60], mflops, f"{op.weight_bytes:,}")  # fmt: skip
    console.print(table)
    console.print(f"{len(inventory.ops)} compute ops, {inventory.const_count} constants, "
                  f"{inventory.total_flops / 1e6:.1f} MFLOPs, {inventory.total_weight_bytes:,} weight bytes")  # fmt: skip


def lint_cmd(
    model: Annotated[Path, typer.Argument(help=".mlmodel or .mlpackage")],
    chip: Annotated[
        list[str] | None,
        typer.Option("--chip", help="Chip to predict for (repeatable; default: all)"),
    ] = None,
    os_version: Annotated[
        str | None, typer.Option("--os", help="Only rules that apply to this OS (e.g. 17.4)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Predict, per op and chip, what will not run on the ANE, why, and how to fix it.
    Exit status 0: nothing predicted off the ANE; 3: something is; 1: bad model; 2: usage."""
    from orchestrator.modelkit import inspect_model, lint

    inventory = inspect_model(model)
    findings = lint(inventory, chip or None, os_version=os_version)
    if as_json:
        typer.echo(json.dumps({"model": model.name, "sha256": inventory.sha256, "prediction": True,
                               "findings": [f.to_json() for f in findings]}, indent=2))  # fmt: skip
    elif not findings:
        typer.echo(
            f"prediction: nothing in {model.name} is expected off the ANE on {', '.join(chip or ['any chip'])}"
        )
    else:
        table = Table(
            "chip", "op", "rule", "expected", "reason", "fix", title=f"prediction for {model.name}"
        )
        for f in findings:
            table.add_row(
                f.chip, f"{f.op_name} ({f.op_type})", f.rule_id, f.expected_unit, f.reason, f.fix
            )
        Console().print(table)
        typer.echo("These are predictions from public reports; real devices have the last word.")
    if findings:
        raise typer.Exit(LINT_FOUND_EXIT)


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
