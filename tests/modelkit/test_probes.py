"""Probe models: loadable, same shapes as the ops they stand for, one per signature."""

from __future__ import annotations

import gc
import json
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.errors import UsageError
from orchestrator.modelkit import inspect_model, op_signature, write_probes
from tests.modelkit.conftest import run_cli


def _program_ops(package: Path) -> list[object]:
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load

    spec = ct.models.MLModel(str(package)).get_spec()
    weights = package / "Data" / "com.apple.CoreML" / "weights"
    program = load(spec, spec.specificationVersion, str(weights))
    return [op for op in program.functions["main"].operations if op.op_type != "const"]


def test_mobilenet_probes_load_and_keep_the_ops_shapes(samples, tmp_path):
    source = samples["mobilenetv2_block.mlpackage"]
    out = run_cli("probes", str(source), str(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    index = json.loads(out.stdout)
    assert index == json.loads((tmp_path / "index.json").read_text())
    inventory = inspect_model(source)
    covered = sorted(i for p in index["probes"] for i in p["source_ops"])
    assert covered == [op.index for op in inventory.ops] and index["skipped"] == []
    for probe in index["probes"]:
        # coremltools rebuilds the program from the spec, type inference included.
        [op] = _program_ops(tmp_path / probe["file"])
        source_op = inventory.ops[probe["source_ops"][0]]
        assert op.op_type == source_op.type
        assert [list(o.shape) for o in op.outputs] == [t.shape for t in source_op.outputs]
        [probe_op] = inspect_model(tmp_path / probe["file"]).ops
        assert [t.shape for t in probe_op.inputs] == [t.shape for t in source_op.inputs]
        assert probe_op.params == source_op.params


def test_duplicate_signatures_share_one_probe(samples, tmp_path):
    index = write_probes(samples["mobilenetv2_block_nn.mlmodel"], tmp_path)
    inventory = inspect_model(samples["mobilenetv2_block_nn.mlmodel"])
    assert len(inventory.ops) == 6 and len(index.probes) == 5  # the two ReLU6 clips match
    [shared] = [p for p in index.probes if len(p.source_ops) == 2]
    assert shared.source_names == ["expand_relu6", "depthwise_relu6"]
    for probe in index.probes:
        [op] = inspect_model(tmp_path / probe.file).ops
        source_op = inventory.ops[probe.source_ops[0]]
        assert [t.shape for t in op.outputs] == [t.shape for t in source_op.outputs]
        assert op.weight_bytes == source_op.weight_bytes  # weights travel with the layer


def test_signature_ignores_names_but_not_shapes_or_params(samples):
    conv = next(op for op in inspect_model(samples["conv10x10.mlpackage"]).ops if op.kind == "conv")
    assert op_signature(conv) == op_signature(replace(conv, name="other", index=9))
    assert len(op_signature(conv)) == 64
    dilated = replace(conv, params={**conv.params, "dilations": [4, 4]})
    assert op_signature(dilated) != op_signature(conv)
    wider = replace(conv, outputs=[replace(conv.outputs[0], shape=[1, 10, 99, 99])])
    assert op_signature(wider) != op_signature(conv)


def test_bulk_probes_do_not_collect_garbage_per_probe(samples, tmp_path):
    full_collections = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            full_collections.append(1)

    gc.callbacks.append(watch)
    try:
        index = write_probes(samples["attention_linear.mlpackage"], tmp_path)
    finally:
        gc.callbacks.remove(watch)
    assert len(index.probes) >= 5 and len(full_collections) <= 1


def test_missing_weights_and_bad_outdir(samples, tmp_path):
    import shutil

    broken = tmp_path / "broken.mlpackage"
    shutil.copytree(samples["conv10x10.mlpackage"], broken)
    shutil.rmtree(broken / "Data" / "com.apple.CoreML" / "weights")
    out = run_cli("probes", str(broken), str(tmp_path / "p"), "--json")
    assert out.returncode == 1 and "weight file" in json.loads(out.stdout)["error"]["message"]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(UsageError):
        write_probes(samples["conv10x10.mlpackage"], a_file)


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("name", ["mobilenetv2_block.mlpackage", "mobilenetv2_block_nn.mlmodel"])
def test_lifted_probes_hold_parallel_copies_with_unique_names(samples, tmp_path, name):
    source = samples[name]
    single = write_probes(source, tmp_path / "one")
    wanted = {single.probes[0].signature}
    lifted = write_probes(source, tmp_path / "lifted", repeat=4, signatures=wanted)
    [probe] = lifted.probes
    assert probe.signature == single.probes[0].signature and "_x4" in probe.file
    ops = inspect_model(tmp_path / "lifted" / probe.file).ops
    [original] = inspect_model(tmp_path / "one" / single.probes[0].file).ops
    assert len(ops) == 4 and len({op.name for op in ops}) == 4
    assert {op_signature(op) for op in ops} == {op_signature(original)}  # copies, not variants


def test_probes_are_the_same_bytes_every_time(samples, tmp_path):
    # Deterministic probes are the same artifact (sha256) in every process and run.
    source = samples["mobilenetv2_block.mlpackage"]
    first = write_probes(source, tmp_path / "a")
    out = run_cli("probes", str(source), str(tmp_path / "b"), "--json")  # another process
    assert out.returncode == 0, out.stderr
    for probe in first.probes:
        assert _tree_bytes(tmp_path / "a" / probe.file) == _tree_bytes(tmp_path / "b" / probe.file)


def test_repeat_out_of_range_is_a_usage_error(samples, tmp_path):
    with pytest.raises(UsageError, match="repeat 0 is out of range"):
        write_probes(samples["conv10x10.mlpackage"], tmp_path, repeat=0)


def test_function_inputs_carry_their_dtype_into_the_signature(samples):
    # The first op reads the function input: its dtype must be known, or the same op
    # deeper inside another model would get another signature.
    ops = inspect_model(samples["conv_sandwich_dilated.mlpackage"]).ops
    assert all(t.dtype for op in ops for t in op.inputs)
    convs = [op for op in ops if op.type == "conv"]
    assert op_signature(convs[0]) == op_signature(convs[2]) != op_signature(convs[1])


@pytest.mark.parametrize("name", ["mobilenetv2_block.mlpackage", "mobilenetv2_block_nn.mlmodel"])
def test_prefixes_keep_the_first_ops_and_expose_every_dangling_value(samples, tmp_path, name):
    import coremltools as ct

    from orchestrator.modelkit import write_prefix

    source = samples[name]
    inventory = inspect_model(source)
    for count in (1, 3, len(inventory.ops)):
        path = write_prefix(source, count, tmp_path)
        ops = inspect_model(path).ops
        assert [op.type for op in ops] == [op.type for op in inventory.ops[:count]]
        assert [t.shape for t in ops[-1].outputs] == [
            t.shape for t in inventory.ops[count - 1].outputs
        ]
        spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
        outputs = {o.name for o in spec.description.output}
        assert {t.name for t in inventory.ops[count - 1].outputs} <= outputs


def test_prefix_out_of_range_is_a_usage_error(samples, tmp_path):
    out = run_cli("probes", str(samples["conv10x10.mlpackage"]), str(tmp_path), "--prefix", "99")
    assert out.returncode == 2 and "prefix 99 is out of range" in out.stderr


def test_a_stored_inventory_gives_the_same_signatures_as_reading_the_model(samples):
    # Bisection plans from the inventory stored at submit time (a JSON column), without
    # reading the model again: the round trip must not change a single signature.
    from orchestrator.modelkit import LintFinding, OpInfo, lint

    for path in samples.values():
        inventory = inspect_model(path)
        stored = json.loads(json.dumps(inventory.to_json()))
        again = [OpInfo.from_json(op) for op in stored["ops"]]
        assert [op_signature(op) for op in again] == [op_signature(op) for op in inventory.ops]
        for finding in lint(inventory, ["A12"]):
            assert LintFinding.from_json(json.loads(json.dumps(finding.to_json()))) == finding
