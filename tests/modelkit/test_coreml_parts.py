"""Reading and cutting models loads coremltools' protobuf classes and C extensions alone
(orchestrator/modelkit/coreml_parts.py), with the answers of the full coremltools."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.modelkit import inspect_model

# Run in a fresh interpreter: the test worker has imported all of coremltools already.
READ_ALONE = """
import json, sys
from pathlib import Path
from orchestrator.modelkit import inspect_model, write_probes
out = {}
probe_root = Path(sys.argv[1])  # the probes go here, not beside the shared samples
for path in sys.argv[2:]:
    inventory = inspect_model(Path(path))
    probes = write_probes(Path(path), probe_root / Path(path).name)
    out[path] = {"inventory": {**inventory.to_json(), "path": None},
                 "probes": sorted(p.signature for p in probes.probes)}
out["loaded"] = sorted(name for name in sys.modules if name.startswith("coremltools"))
print(json.dumps(out))
"""


def _read_alone(paths: list[Path], tmp_path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", READ_ALONE, str(tmp_path), *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Failed to load" not in done.stderr  # the full import's Linux noise
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_inspecting_and_probing_import_no_converter_and_answer_as_the_full_import(
    samples: dict[str, Path], tmp_path: Path
) -> None:
    chosen = [
        samples["mobilenetv2_block.mlpackage"],
        samples["mobilenetv2_block_nn.mlmodel"],
        samples["lstm.mlpackage"],
    ]
    alone = _read_alone(chosen, tmp_path)
    loaded = alone.pop("loaded")
    assert isinstance(loaded, list)
    assert "coremltools" not in loaded  # the package __init__ never ran
    assert not [name for name in loaded if name.startswith("coremltools.converters")]
    assert "coremltools.proto.Model_pb2" in loaded
    for path in chosen:
        here = inspect_model(path)  # this worker: coremltools fully imported
        got = alone[str(path)]
        assert isinstance(got, dict)
        assert got["inventory"] == {**here.to_json(), "path": None}
        assert got["probes"], "no probe written"


def test_a_full_import_afterwards_reuses_the_parts() -> None:
    code = """
from orchestrator.modelkit.coreml_parts import part
model_pb2 = part("proto.Model_pb2")
storage = part("libmilstoragepython")
import coremltools as ct
from coremltools.libmilstoragepython import _BlobStorageReader
assert ct.proto.Model_pb2 is model_pb2, "two Model_pb2 modules"
assert _BlobStorageReader is storage._BlobStorageReader
assert part("proto.Model_pb2") is model_pb2
print(ct.__version__)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()


def test_a_part_that_cannot_load_alone_falls_back_to_the_full_import() -> None:
    code = """
import sys
from orchestrator.modelkit import coreml_parts
def broken(qualified):
    sys.modules["coremltools.proto"] = object()  # half-loaded state the fallback must drop
    raise ImportError("this coremltools needs its __init__")
coreml_parts._alone = broken
model_pb2 = coreml_parts.part("proto.Model_pb2")
import coremltools as ct
assert "coremltools.converters" in sys.modules  # the full import ran
assert ct.proto.Model_pb2 is model_pb2
print(model_pb2.Model().DESCRIPTOR.full_name)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "CoreML.Specification.Model"


def test_only_the_light_parts_can_be_asked_for() -> None:
    from orchestrator.modelkit.coreml_parts import part

    with pytest.raises(ValueError, match="not one of the light parts"):
        part("converters")
