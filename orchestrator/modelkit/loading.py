"""Load .mlmodel / .mlpackage specs and build the op inventory; bad input → ModelError.

Fingerprint (``ModelInventory.sha256``), the *canonical content* of a model: sha256 over
the spec re-serialised deterministically (protobuf maps in key order) with
``description.metadata`` cleared, then, for an ML program, the bytes of every weight file
in path order. Left out on purpose: Manifest.json (coremltools writes random item
identifiers into it) and the metadata (author, licence, the coremltools version that saved
it) — none changes what runs, and each would give the same model saved twice two
fingerprints. Any change to a layer, op, shape or weight changes the fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from orchestrator.errors import ModelError
from orchestrator.modelkit import quiet
from orchestrator.modelkit.inventory import FeatureInfo, ModelInventory
from orchestrator.modelkit.mlprogram import program_ops
from orchestrator.modelkit.neuralnet import network_ops
from orchestrator.modelkit.probe_network import pipeline_models
from orchestrator.modelkit.targets import TARGETS


def _spec_path(path: Path) -> tuple[Path, list[Path]]:
    """The spec file and the weight files of a model path."""
    try:
        return _find_spec(path)
    except OSError as error:  # permission denied on a folder, a path too long, …
        raise ModelError(
            f"{path}: cannot read ({error.strerror or error})",
            path=str(path),
            hint="check the path and its permissions",
        ) from error


def _find_spec(path: Path) -> tuple[Path, list[Path]]:
    if not path.exists():
        raise ModelError(f"{path}: no such file or directory", path=str(path))
    if path.suffix == ".mlpackage" or path.is_dir():
        manifest = path / "Manifest.json"
        if not path.is_dir() or not manifest.is_file():
            raise ModelError(f"{path}: not an .mlpackage (no Manifest.json)", path=str(path))
        try:
            info = json.loads(manifest.read_text())
            root = info["itemInfoEntries"][info["rootModelIdentifier"]]["path"]
        except (ValueError, KeyError, TypeError) as error:
            raise ModelError(
                f"{path}: Manifest.json is malformed ({error})", path=str(path)
            ) from error
        spec = path / "Data" / root
        if not spec.is_file():
            raise ModelError(f"{path}: the model spec {root} is missing", path=str(path))
        weights = sorted(p for p in (spec.parent / "weights").rglob("*") if p.is_file())
        return spec, weights
    if not path.is_file():
        raise ModelError(f"{path}: not a file", path=str(path))
    return path, []


def load_spec(path: Path) -> tuple[Any, Path, list[Path]]:
    spec_file, weights = _spec_path(path)
    try:
        data = spec_file.read_bytes()
    except OSError as error:
        raise ModelError(f"{path}: cannot read ({error.strerror})", path=str(path)) from error
    with quiet.silenced():
        from coremltools.proto import Model_pb2
    spec = Model_pb2.Model()
    try:
        spec.ParseFromString(data)
    except Exception as error:  # protobuf's DecodeError and friends
        raise ModelError(
            f"{path}: not a Core ML model (the protobuf does not parse: {error})", path=str(path)
        ) from error
    if spec.specificationVersion == 0 or spec.WhichOneof("Type") is None:
        raise ModelError(f"{path}: not a Core ML model (empty specification)", path=str(path))
    if spec.WhichOneof("Type") == "mlProgram":
        _check_weight_files(path, spec, spec_file.parent)
    return spec, spec_file, weights


def _check_weight_files(path: Path, spec: Any, spec_dir: Path) -> None:
    # A package copied without its weights folder parses fine; catch it here, not on a phone.
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                if op.type != "const":
                    continue
                value = op.attributes["val"]
                if value.WhichOneof("value") != "blobFileValue":
                    continue
                name = value.blobFileValue.fileName.removeprefix("@model_path/")
                if not (spec_dir / name).is_file():
                    raise ModelError(
                        f"{path}: the weight file {name} is missing from the package",
                        path=str(path), hint="copy the whole .mlpackage, weights included",
                    )  # fmt: skip
                return  # one weight file per package in practice; checking the first suffices


def fingerprint(spec: Any, weights: list[Path]) -> str:
    canonical = type(spec)()
    canonical.CopyFrom(spec)
    canonical.description.ClearField("metadata")
    digest = hashlib.sha256(canonical.SerializeToString(deterministic=True))
    for part in weights:
        with part.open("rb") as src:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _array_dtype(code: int) -> str:
    from coremltools.proto import FeatureTypes_pb2

    try:
        return str(FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(code))
    except ValueError:  # a data type newer than this coremltools
        return f"unknown({code})"


def _features(features: Any) -> list[FeatureInfo]:
    found = []
    for feature in features:
        kind = feature.type.WhichOneof("Type") or "unknown"
        shape: list[int] | None = None
        dtype = None
        flexible = "none"
        if kind == "multiArrayType":
            array = feature.type.multiArrayType
            shape = [int(d) for d in array.shape] or None
            dtype = _array_dtype(array.dataType)
            flex = array.WhichOneof("ShapeFlexibility")
            flexible = {"enumeratedShapes": "enumerated", "shapeRange": "range"}.get(
                flex or "", "none"
            )
        elif kind == "imageType":
            image = feature.type.imageType
            channels = 1 if image.colorSpace == 10 else 3  # GRAYSCALE = 10
            shape = [1, channels, int(image.height), int(image.width)]
            dtype = "image"
            flex = image.WhichOneof("SizeFlexibility")
            flexible = {"enumeratedSizes": "enumerated", "imageSizeRange": "range"}.get(
                flex or "", "none"
            )
        found.append(FeatureInfo(feature.name, kind.replace("Type", ""), shape, dtype, flexible))
    return found


def inspect_model(path: Path) -> ModelInventory:
    spec, spec_file, weights = load_spec(path)
    return inspect_loaded(path, spec, spec_file, weights)


def inspect_loaded(path: Path, spec: Any, spec_file: Path, weights: list[Path]) -> ModelInventory:
    """The inventory of a spec already parsed by ``load_spec``."""
    model_type = spec.WhichOneof("Type")
    inputs = _features(spec.description.input)
    notes: list[str] = []
    if model_type == "mlProgram":
        ops, consts, precision = program_ops(spec, path)
        kind = "mlProgram"
    elif model_type in {"neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor"}:
        ops, consts, precision = network_ops(getattr(spec, model_type), inputs)
        kind = "neuralNetwork"
    elif model_type == "pipeline" or model_type.startswith("pipeline"):
        ops, consts, precision, kind = [], 0, None, "pipeline"
        for index, sub in enumerate(pipeline_models(getattr(spec, model_type))):
            sub_type = sub.WhichOneof("Type")
            if sub_type in {"neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor"}:
                sub_ops, sub_consts, precision = network_ops(
                    getattr(sub, sub_type), _features(sub.description.input)
                )
                offset = len(ops)
                ops += [
                    op.__class__(**{**op.__dict__, "index": op.index + offset}) for op in sub_ops
                ]
                consts += sub_consts
            else:
                notes.append(f"pipeline stage {index} is a {sub_type}: not analysed")
    else:
        raise ModelError(
            f"{path}: a {model_type} model has no neural-network ops to run on the ANE",
            path=str(path),
            hint="anefarm analyses neural networks and ML programs",
        )
    if not ops:
        raise ModelError(f"{path}: the model has no compute ops", path=str(path))
    size = sum(p.stat().st_size for p in [spec_file, *weights])
    return ModelInventory(
        path=path, sha256=fingerprint(spec, weights),
        format="mlpackage" if path.suffix == ".mlpackage" or path.is_dir() else "mlmodel",
        model_type=kind, spec_version=int(spec.specificationVersion),
        min_deployment_target=TARGETS.get(int(spec.specificationVersion), "unknown"),
        inputs=inputs, outputs=_features(spec.description.output), ops=ops, const_count=consts,
        size_bytes=size, compute_precision=precision, notes=notes,
    )  # fmt: skip
