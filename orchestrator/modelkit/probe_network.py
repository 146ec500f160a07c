"""Neural-network probes: one layer copied (weights and all) into its own .mlmodel.

The spec has no intermediate shapes, so a layer can stand alone only where modelkit's
propagation knows its input and output shapes; otherwise the op is skipped with a reason.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from orchestrator.modelkit.coreml_parts import part
from orchestrator.modelkit.inventory import OpInfo, TensorInfo
from orchestrator.modelkit.probe_program import ProbeSkipped

NETWORK_TYPES = ("neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor")


def pipeline_models(pipeline: Any) -> Any:
    """The sub-models of a pipeline; classifier/regressor pipelines nest one level deeper."""
    return pipeline.models if hasattr(pipeline, "models") else pipeline.pipeline.models


def network_layers(spec: Any) -> tuple[list[Any], Any]:
    """Every layer in inventory order (pipelines flattened) and the first network's settings."""
    kind = spec.WhichOneof("Type")
    if kind in NETWORK_TYPES:
        network = getattr(spec, kind)
        return list(network.layers), network
    layers: list[Any] = []
    first = None
    for sub in pipeline_models(getattr(spec, kind)):
        sub_kind = sub.WhichOneof("Type")
        if sub_kind in NETWORK_TYPES:
            network = getattr(sub, sub_kind)
            first = first or network
            layers += list(network.layers)
    return layers, first


def _feature_shape(tensor: TensorInfo) -> list[int]:
    # Back from modelkit's batch-first shapes to what an NN feature declares: (C, H, W)
    # for images and feature maps, (C) for one step of a recurrent input.
    shape = tensor.shape
    if shape is None:
        raise ProbeSkipped(f"the shape of {tensor.name} is unknown (not propagated)")
    if len(shape) == 4 and shape[0] == 1:
        return shape[1:]
    if len(shape) == 3 and shape[:2] == [1, 1]:
        return shape[2:]
    raise ProbeSkipped(f"{tensor.name} has shape {shape}, which an NN feature cannot declare")


def build_probe(
    spec: Any, layer: Any, settings: Any, op: OpInfo, destination: Path, repeat: int = 1
) -> None:
    """One layer as its own model; with ``repeat`` > 1, that many parallel copies of it
    reading the same inputs, each with its own outputs (a lifted probe)."""
    copies: list[tuple[Any, OpInfo]] = []
    for copy in range(repeat):
        copied = type(layer)()
        copied.CopyFrom(layer)
        info = op
        if copy:
            copied.name = f"{layer.name}__copy{copy}"
            del copied.output[:]
            copied.output.extend(f"{name}__copy{copy}" for name in layer.output)
            outputs = [
                TensorInfo(n, t.shape, t.dtype)
                for n, t in zip(copied.output, op.outputs, strict=False)
            ]
            info = replace(op, name=copied.name, outputs=outputs)
        copies.append((copied, info))
    _emit(spec, settings, copies, destination, every=True)


def build_prefix(
    spec: Any, layers: list[Any], settings: Any, ops: list[OpInfo], destination: Path
) -> None:
    """The first ``len(ops)`` layers as a model: values read from outside are inputs,
    values no later layer of the prefix reads are outputs."""
    _emit(spec, settings, list(zip(layers[: len(ops)], ops, strict=True)), destination, every=False)


def _emit(
    spec: Any, settings: Any, layers: list[tuple[Any, OpInfo]], destination: Path, *, every: bool
) -> None:
    """A network of ``layers``: what they read from outside are inputs; outputs are every
    layer's (``every``) or those no layer reads (and always the last layer's)."""
    FeatureTypes_pb2, Model_pb2 = part("proto.FeatureTypes_pb2"), part("proto.Model_pb2")

    probe = Model_pb2.Model()
    probe.specificationVersion = spec.specificationVersion
    network = probe.neuralNetwork
    if settings is not None:
        network.arrayInputShapeMapping = settings.arrayInputShapeMapping
        network.imageInputShapeMapping = settings.imageInputShapeMapping
    produced: dict[str, TensorInfo] = {}
    inputs: dict[str, TensorInfo] = {}
    read: set[str] = set()
    for layer, op in layers:
        network.layers.add().CopyFrom(layer)
        for tensor in op.inputs:
            read.add(tensor.name)
            if tensor.name not in produced:
                inputs.setdefault(tensor.name, tensor)
        produced.update({t.name: t for t in op.outputs})
    last = {t.name for t in layers[-1][1].outputs}
    # A layer that writes in place (output named as its input) keeps just the input feature.
    outputs = [
        t
        for name, t in produced.items()
        if (every or name not in read or name in last) and name not in inputs
    ]
    for features, tensors in ((probe.description.input, list(inputs.values())),
                              (probe.description.output, outputs)):  # fmt: skip
        for tensor in tensors:
            feature = features.add()
            feature.name = tensor.name
            array = feature.type.multiArrayType
            array.shape.extend(_feature_shape(tensor))
            array.dataType = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Value("FLOAT32")
    destination.write_bytes(probe.SerializeToString(deterministic=True))
