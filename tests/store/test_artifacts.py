"""The artifact store and `anefarm artifacts add`: content addressing and refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.artifacts import ArtifactStore
from orchestrator.errors import ArtifactError


def make_package(root: Path, weights: bytes = b"w" * 100) -> Path:
    pkg = root / "net.mlpackage"
    (pkg / "Data" / "com.apple.CoreML" / "weights").mkdir(parents=True)
    (pkg / "Manifest.json").write_text("{}")
    (pkg / "Data" / "com.apple.CoreML" / "model.mlmodel").write_bytes(b"spec")
    (pkg / "Data" / "com.apple.CoreML" / "weights" / "weight.bin").write_bytes(weights)
    return pkg


def files_in(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_same_package_same_hash_and_weights_change_it(tmp_path):
    store = ArtifactStore(tmp_path / "store", 10**6)
    a = store.add(make_package(tmp_path / "a"))
    pkg_b = make_package(tmp_path / "b")
    os.utime(pkg_b / "Manifest.json", (0, 0))  # mtimes do not matter
    assert store.add(pkg_b).sha256 == a.sha256
    c = store.add(make_package(tmp_path / "c", weights=b"x" * 100))
    assert c.sha256 != a.sha256
    assert store.verify(a.sha256) == a.path


def test_corruption_is_detected(tmp_path):
    store = ArtifactStore(tmp_path / "store", 10**6)
    model = tmp_path / "m.mlmodel"
    model.write_bytes(b"proto")
    stored = store.add(model)
    stored.path.write_bytes(b"evil!")
    with pytest.raises(ArtifactError, match="corrupt"):
        store.verify(stored.sha256)


@pytest.mark.parametrize(
    # (a link given as the model is followed: tests/modelkit/test_integrity.py)
    "case",
    ["missing", "symlink_inside", "oversize", "wrong_kind", "empty_pkg"],
)
def test_refusals_leave_nothing_behind(tmp_path, case):
    store_dir = tmp_path / "store"
    store = ArtifactStore(store_dir, 1000)
    if case == "missing":
        path = tmp_path / "none.mlmodel"
    elif case == "symlink_inside":
        path = make_package(tmp_path)
        (path / "link").symlink_to("/etc/passwd")
    elif case == "oversize":
        path = tmp_path / "big.mlmodel"
        path.write_bytes(b"0" * 5000)
    elif case == "wrong_kind":
        path = tmp_path / "model.onnx"
        path.write_bytes(b"x")
    else:
        path = tmp_path / "e.mlpackage"
        path.mkdir()
    with pytest.raises(ArtifactError):
        store.add(path)
    assert files_in(store_dir) == []


def run_cli(*args, home: Path, env: dict | None = None):
    full_env = {**os.environ, "ANEFARM_HOME": str(home), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True, env=full_env
    )


def test_cli_add_prints_sha_and_json(tmp_path):
    model = tmp_path / "m.mlmodel"
    model.write_bytes(b"proto bytes")
    out = run_cli("artifacts", "add", str(model), "--json", home=tmp_path / "home")
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["format"] == "mlmodel" and len(body["sha256"]) == 64 and body["size_bytes"] == 11


@pytest.mark.parametrize("case", ["missing", "symlink", "oversize"])
def test_cli_add_errors_are_one_line_exit_1(tmp_path, case):
    home = tmp_path / "home"
    if case == "missing":
        path = tmp_path / "nope.mlpackage"
    elif case == "symlink":
        path = make_package(tmp_path)
        (path / "Data" / "link").symlink_to("/etc")
    else:
        path = tmp_path / "big.mlmodel"
        path.write_bytes(b"0" * 4096)
    out = run_cli("artifacts", "add", str(path), home=home, env={"ANEFARM_MAX_MODEL_BYTES": "1024"})
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("anefarm: error:")
    assert "Traceback" not in out.stderr
    assert files_in(home / "artifacts") == []


def test_cli_usage_error_exits_2(tmp_path):
    out = run_cli("artifacts", "add", home=tmp_path)
    assert out.returncode == 2
