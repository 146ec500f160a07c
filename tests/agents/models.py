"""Op inventories built by hand, so behaviour tests need neither files nor coremltools."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from orchestrator.modelkit.inventory import ModelInventory, OpInfo, TensorInfo
from orchestrator.protocol import ComputeUnits, ManifestModel, ModelFormat, RunnerManifest


def tensor(shape: list[int], dtype: str = "float16", name: str = "t") -> TensorInfo:
    return TensorInfo(name=name, shape=shape, dtype=dtype)


def op(
    kind: str,
    inputs: list[list[int]],
    outputs: list[list[int]],
    *,
    flops: int = 0,
    weight_bytes: int = 0,
    params: dict[str, Any] | None = None,
    type_: str | None = None,
    dtype: str = "float16",
) -> OpInfo:
    return OpInfo(
        index=0,
        name=kind,
        type=type_ or kind,
        kind=kind,
        params=params or {},
        inputs=[tensor(s, dtype) for s in inputs],
        outputs=[tensor(s, dtype) for s in outputs],
        flops=flops,
        weight_bytes=weight_bytes,
    )


def conv(
    size: int = 500, kernel: int = 10, filters: int = 10, channels: int = 3, dilation: int = 1
) -> OpInfo:
    """The write-up's convolution: 1×3×size×size input, ``filters`` kernel×kernel filters."""
    span = dilation * (kernel - 1) + 1
    out = size - span + 1
    macs = filters * out * out * channels * kernel * kernel
    return op(
        "conv",
        [[1, channels, size, size]],
        [[1, filters, out, out]],
        flops=2 * macs,
        weight_bytes=filters * channels * kernel * kernel * 2,
        params={"kernel": [kernel, kernel], "dilations": [dilation, dilation], "strides": [1, 1]},
    )


def inventory(
    ops: list[OpInfo], *, name: str = "model", model_type: str = "mlProgram"
) -> ModelInventory:
    numbered = [
        OpInfo(i, f"{o.name}_{i}", o.type, o.kind, o.params, o.inputs, o.outputs, o.flops,
               o.weight_bytes)
        for i, o in enumerate(ops)
    ]  # fmt: skip
    sha = hashlib.sha256(f"{name}:{len(ops)}:{[o.kind for o in ops]}".encode()).hexdigest()
    weights = sum(o.weight_bytes for o in ops)
    return ModelInventory(
        path=Path(f"/models/{name}.mlpackage"), sha256=sha, format="mlpackage",
        model_type=model_type, spec_version=7, min_deployment_target="iOS16", inputs=[],
        outputs=[], ops=numbered, const_count=0, size_bytes=weights + 4096,
    )  # fmt: skip


def write_up_conv(dilation: int = 1) -> ModelInventory:
    """Cast in, the 10×10 convolution, cast out: what the ML program converter emits."""
    c = conv(dilation=dilation)
    out = c.outputs[0].shape or []
    return inventory(
        [
            op("cast", [[1, 3, 500, 500]], [[1, 3, 500, 500]], type_="cast", flops=750_000),
            c,
            op("cast", [out], [out], type_="cast", dtype="float32"),
        ],
        name=f"conv10x10_d{dilation}",
    )


def conv_net(layers: int = 6, size: int = 128, channels: int = 64) -> ModelInventory:
    """An ANE-friendly conv net: 3×3 convolutions and ReLUs, float16 throughout."""
    ops: list[OpInfo] = []
    for _ in range(layers):
        ops.append(
            op(
                "conv",
                [[1, channels, size, size]],
                [[1, channels, size, size]],
                flops=2 * channels * channels * 9 * size * size,
                weight_bytes=channels * channels * 9 * 2,
                params={"kernel": [3, 3], "dilations": [1, 1]},
            )
        )
        ops.append(
            op("activation", [[1, channels, size, size]], [[1, channels, size, size]],
               flops=channels * size * size, type_="relu")
        )  # fmt: skip
    return inventory(ops, name=f"convnet{layers}x{size}x{channels}")


def lstm_model() -> ModelInventory:
    return inventory(
        [
            op("cast", [[16, 1, 32]], [[16, 1, 32]], type_="cast"),
            op("rnn", [[16, 1, 32]], [[16, 1, 64]], flops=16 * 8 * 64 * 96, weight_bytes=98_816,
               type_="lstm"),
            op("linear", [[1, 64]], [[1, 10]], flops=1280, weight_bytes=1300),
        ],
        name="lstm",
    )  # fmt: skip


def manifest(
    model: ModelInventory,
    *,
    batch_id: str = "batch-1",
    units: list[ComputeUnits] | None = None,
    iterations: int = 50,
    warmup: int = 5,
    budget_s: float = 600.0,
    input_seed: int = 0,
    compute_plan: bool = True,
) -> RunnerManifest:
    return RunnerManifest(
        batch_id=batch_id,
        model=ManifestModel(filename=model.path.name, sha256=model.sha256,
                            format=ModelFormat.MLPACKAGE),
        compute_units=units or list(ComputeUnits),
        iterations=iterations,
        warmup=warmup,
        time_budget_s=budget_s,
        input_seed=input_seed,
        compute_plan=compute_plan,
    )  # fmt: skip
