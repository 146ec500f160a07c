"""Load .mlmodel / .mlpackage specs and build the op inventory; bad input → ModelError.

Two hashes, each under its own name:

- ``ModelInventory.sha256``, *the* sha256 of the model, the same in every command and
  table (inspect, lint, artifacts add, the report, the database, ``RunBatch.model``): the
  artifact store's hash, computed the way the store computes it, writing nothing
  (``orchestrator.artifacts.store.artifact_digest``: an ``.mlmodel``'s bytes; a package's
  deterministic tar; docs/fingerprint.md). A copy of a model elsewhere has the same one.
- ``ModelInventory.content_sha256``, the *canonical content* (``fingerprints``):
  sha256 over the spec re-serialised deterministically (protobuf maps in key order) with
  ``description.metadata`` cleared, then, for an ML program, the bytes of every weight
  file in path order. Left out on purpose: Manifest.json (coremltools writes random item
  identifiers into it) and the metadata (author, licence, the coremltools version that
  saved it) — none changes what runs, so the same model saved twice has one content
  fingerprint (and two sha256s). Any change to a layer, op, shape or weight changes both.

A symbolic link given as the model is followed to its target, as the artifact store does;
links inside a package are refused, as the store refuses them. An ML program's weight
blobs are checked against what its spec references (``weights.check_refs``, the
references collected by ``program_ops`` on its walk over the ops), so a truncated or
corrupt weight file is refused here, at inspect, lint and submit alike.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from orchestrator.artifacts.store import artifact_digest
from orchestrator.errors import ArtifactError, ModelError
from orchestrator.modelkit.coreml_parts import part
from orchestrator.modelkit.flexible import shape_options
from orchestrator.modelkit.inventory import FeatureInfo, ModelInventory
from orchestrator.modelkit.mlprogram import program_ops
from orchestrator.modelkit.neuralnet import network_ops
from orchestrator.modelkit.probe_network import pipeline_models
from orchestrator.modelkit.targets import TARGETS
from orchestrator.modelkit.weights import BlobRef, check_refs


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


def _find_spec(given: Path) -> tuple[Path, list[Path]]:
    if not given.exists():  # a dangling link too
        raise ModelError(
            f"{given}: no such file or directory",
            path=str(given),
            hint="give an .mlmodel file or an .mlpackage folder",
        )
    # The artifact store follows a link given as the model; so does every command.
    path = given.resolve() if given.is_symlink() else given
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
    spec = part("proto.Model_pb2").Model()
    try:
        spec.ParseFromString(data)
    except Exception as error:  # protobuf's DecodeError and friends
        raise ModelError(
            f"{path}: not a Core ML model (the protobuf does not parse: {error})", path=str(path)
        ) from error
    if spec.specificationVersion == 0 or spec.WhichOneof("Type") is None:
        raise ModelError(f"{path}: not a Core ML model (empty specification)", path=str(path))
    return spec, spec_file, weights


def model_sha256(path: Path) -> str:
    """The artifact store's sha256 of the model at ``path`` (see the module docstring)."""
    return fingerprints(path, None, [])[0]


def fingerprints(path: Path, spec: Any, weights: list[Path]) -> tuple[str, str | None]:
    """(sha256, content_sha256) of the model at ``path`` (content: None without ``spec``).
    The weight files are read once, for both: they may be gigabytes."""
    content = hashlib.sha256(_canonical_spec_bytes(spec)) if spec is not None else None
    wanted = set(weights)

    def tee(file: Path, chunk: bytes) -> None:
        if content is not None and file in wanted:  # the tar reads them in path order
            content.update(chunk)

    try:
        sha256 = artifact_digest(path, tee=tee)[0]
    except ArtifactError as error:  # a link or special file inside a package, …
        raise ModelError(error.message, path=str(path), hint=error.hint) from error
    return sha256, content.hexdigest() if content is not None else None


def _canonical_spec_bytes(spec: Any) -> bytes:
    """The deterministic serialisation of the spec with ``description.metadata`` cleared,
    built without copying the model itself (a copy of a 1,000-op program costs as much as
    inspecting it): the small fields go through a copy, then the model's own message
    (field ≥ 200, so last in field order) is serialised in place and framed as protobuf
    frames a field: tag, length, bytes."""
    kind = spec.WhichOneof("Type")
    shell = type(spec)()
    for descriptor, value in spec.ListFields():
        if descriptor.name == kind:
            continue
        if descriptor.message_type is not None:
            getattr(shell, descriptor.name).CopyFrom(value)
        else:
            setattr(shell, descriptor.name, value)
    shell.description.ClearField("metadata")
    head = shell.SerializeToString(deterministic=True)
    if kind is None:
        return head
    body = getattr(spec, kind).SerializeToString(deterministic=True)
    number = spec.DESCRIPTOR.fields_by_name[kind].number
    return head + _varint(number << 3 | 2) + _varint(len(body)) + body


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _array_dtype(code: int) -> str:
    try:
        return str(part("proto.FeatureTypes_pb2").ArrayFeatureType.ArrayDataType.Name(code))
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
        found.append(FeatureInfo(feature.name, kind.replace("Type", ""), shape, dtype, flexible,
                                 shape_options(feature.type)))  # fmt: skip
    return found


def inspect_model(path: Path) -> ModelInventory:
    spec, spec_file, weights = load_spec(path)
    return inspect_loaded(path, spec, spec_file, weights)


def inspect_loaded(path: Path, spec: Any, spec_file: Path, weights: list[Path]) -> ModelInventory:
    """The inventory of a spec already parsed by ``load_spec``; an ML program whose weight
    blobs do not match its spec is refused (ModelError)."""
    model_type = spec.WhichOneof("Type")
    inputs = _features(spec.description.input)
    notes: list[str] = []
    if model_type == "mlProgram":
        refs: list[BlobRef] = []
        ops, consts, precision = program_ops(spec, path, refs)
        check_refs(path, refs, spec_file.parent)
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
    sha256, content_sha256 = fingerprints(path, spec, weights)
    return ModelInventory(
        path=path, sha256=sha256, content_sha256=content_sha256,
        format="mlpackage" if path.suffix == ".mlpackage" or path.is_dir() else "mlmodel",
        model_type=kind, spec_version=int(spec.specificationVersion),
        min_deployment_target=TARGETS.get(int(spec.specificationVersion), "unknown"),
        inputs=inputs, outputs=_features(spec.description.output), ops=ops, const_count=consts,
        size_bytes=size, compute_precision=precision, notes=notes,
    )  # fmt: skip
