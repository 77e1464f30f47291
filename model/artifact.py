"""One model file: the trained head, its labels, and everything needed to trust and load it.

Layout: ``MAGIC`` | sha256 of the payload (32 bytes) | payload (msgpack of ``meta`` and the
head's params). Loading checks the magic, the checksum, the format version, the backbone
variant and the preprocessing version, and fails with a message that says what to do.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from flax import serialization

from model import MATMULS, POOLINGS
from model.efficientnet import VARIANTS
from model.files import replace_durably
from model.preprocess import PREPROCESS_VERSION

MAGIC = b"WHATBREED-MODEL\n"
FORMAT_VERSION = 2  # 2: the features' pooling (older code would read dog-pooled heads wrong)


class ArtifactError(ValueError):
    """A model file that cannot be used; str(error) says why and what to do."""


@dataclass(frozen=True)
class BreedLabel:
    label: str  # WordNet id or slug
    name: str
    aliases: tuple[str, ...] = ()


@dataclass
class Artifact:
    variant: str
    labels: list[BreedLabel]
    head_config: dict  # BreedHead fields other than num_breeds: hidden, dropout
    head_params: dict  # numpy arrays
    metrics: dict = field(default_factory=dict)
    manifest_sha256: str = ""
    code_version: str = ""
    created_at: str = ""
    preprocess_version: int = PREPROCESS_VERSION
    pooling: str = "mean"  # how the features the head was fitted on were pooled (POOLINGS)
    matmul: str = "float32"  # the backbone's 1×1 products that computed them (MATMULS)

    @property
    def version(self) -> str:
        """Names the model in answers and logs, e.g. "lite0-head-20261125-3f2a9c1b"."""
        return f"{self.variant}-head-{self.created_at[:10].replace('-', '')}-{self.digest[:8]}"

    @property
    def digest(self) -> str:
        return hashlib.sha256(_payload(self)).hexdigest()


def code_version() -> str:
    """The git commit of this checkout, or "unknown" outside one."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                              text=True, cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _payload(artifact: Artifact) -> bytes:
    meta = asdict(artifact) | {"format_version": FORMAT_VERSION}
    meta.pop("head_params")
    return serialization.msgpack_serialize({"meta": json.dumps(meta),
                                            "params": artifact.head_params})


def save_artifact(artifact: Artifact, path: Path) -> None:
    payload = _payload(artifact)
    replace_durably(path, MAGIC + hashlib.sha256(payload).digest() + payload)


def load_artifact(path: Path) -> Artifact:
    """Read and check a model file; ArtifactError says what is wrong with it."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ArtifactError(f"cannot read model file {path}: {error.strerror}") from error
    if not data.startswith(MAGIC):
        raise ArtifactError(f"{path} is not a WhatBreed model file")
    checksum, payload = data[len(MAGIC) : len(MAGIC) + 32], data[len(MAGIC) + 32 :]
    if hashlib.sha256(payload).digest() != checksum:
        raise ArtifactError(f"{path} is damaged (checksum mismatch): copy or export it again")
    content = serialization.msgpack_restore(payload)
    meta = json.loads(content["meta"])
    meta.setdefault("pooling", "mean")  # files from before it was recorded: theirs was the mean
    meta.setdefault("matmul", "float32")  # likewise: exact products
    _check_compatible(path, meta)
    labels = [BreedLabel(m["label"], m["name"], tuple(m["aliases"])) for m in meta["labels"]]
    params = {k: {n: np.asarray(a) for n, a in v.items()} for k, v in content["params"].items()}
    if params["classifier"]["bias"].shape != (len(labels),):
        raise ArtifactError(f"{path} is inconsistent: {len(labels)} labels but "
                            f"{params['classifier']['bias'].shape[0]} outputs")
    fields_ = {k: meta[k] for k in ("variant", "head_config", "metrics", "manifest_sha256",
                                    "code_version", "created_at", "preprocess_version",
                                    "pooling", "matmul")}
    return Artifact(labels=labels, head_params=params, **fields_)


def _check_compatible(path: Path, meta: dict) -> None:
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ArtifactError(f"{path} was made by a newer WhatBreed (format "
                            f"{meta['format_version']}): update this checkout")
    if meta["variant"] not in VARIANTS or meta["variant"] == "tiny":
        raise ArtifactError(f"{path} needs backbone {meta['variant']!r}, which this code "
                            "does not have")
    if meta["pooling"] not in POOLINGS:
        raise ArtifactError(f"{path} reads features pooled as {meta['pooling']!r}, which this "
                            "code does not make")
    if meta["matmul"] not in MATMULS:
        raise ArtifactError(f"{path} was fitted on features of {meta['matmul']!r} products, "
                            "which this code does not make")
    if meta["preprocess_version"] != PREPROCESS_VERSION:
        raise ArtifactError(f"{path} was trained with preprocessing version "
                            f"{meta['preprocess_version']}, this code uses "
                            f"{PREPROCESS_VERSION}: train it again")
