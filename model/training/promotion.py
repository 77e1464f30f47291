"""Promoting a model file, and rolling it back: atomic swaps with a history beside the file.

    var/model.whatbreed                    the model the bot serves (it reloads on change)
    var/model.whatbreed.history/
        <version>.whatbreed                every model ever promoted, and the one it replaced
        promotions.jsonl                   one line a promotion or rollback, with the figures

The served file only ever changes by ``os.replace`` of a complete file, so a reader sees the
old model or the new one, never half of one; without a file the bot serves the zero-training
model, so rolling back the first promotion removes the file. A promotion is logged before the
swap, so whichever model a killed promotion leaves serving has its line (rollback goes by the
served file's version); a line torn by a crash is skipped.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from model.artifact import Artifact, load_artifact, save_artifact
from model.files import replace_durably, sweep_leftovers, sync_folder

log = logging.getLogger(__name__)


class PromotionError(RuntimeError):
    """Nothing to roll back, or a history that does not match the served file."""


def history_dir(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".history")


def sweep_killed_writes(model_path: Path) -> int:
    """Remove what killed writes left beside the served file and in its history (model files,
    retraining's state; an hour old or more), and return how many went."""
    folders = (model_path.parent, history_dir(model_path))
    return sum(sweep_leftovers(folder) for folder in folders if folder.is_dir())


def promotions(model_path: Path) -> list[dict]:
    """Every promotion and rollback so far, oldest first."""
    log_file = history_dir(model_path) / "promotions.jsonl"
    if not log_file.exists():
        return []
    entries = []
    for line in filter(str.strip, log_file.read_text().splitlines()):
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:  # torn by a crash mid-write
            log.warning("%s: skipping an unreadable line", log_file)
    return entries


def _record(model_path: Path, entry: dict) -> None:
    entry = {"at": datetime.now(UTC).isoformat(timespec="seconds")} | entry
    log_file = history_dir(model_path) / "promotions.jsonl"
    torn = log_file.exists() and not log_file.read_bytes().endswith(b"\n")
    with open(log_file, "a") as f:
        f.write("\n" * torn + json.dumps(entry) + "\n")  # a torn line stays on its own
        f.flush()
        os.fsync(f.fileno())
    log.info("%s: %s -> %s", entry["action"], entry["from"], entry["to"])


def _archive(model_path: Path, artifact: Artifact) -> str:
    """Keep a copy of ``artifact`` in the history; returns its file name there."""
    name = f"{artifact.version}.whatbreed"
    if not (history_dir(model_path) / name).exists():
        save_artifact(artifact, history_dir(model_path) / name)
    return name


def promote(candidate: Artifact, model_path: Path, current_version: str,
            figures: dict) -> None:
    """Serve ``candidate`` from ``model_path``, keeping the model it replaces, which must
    still be ``current_version`` (the one the candidate was trained from and compared with)."""
    history_dir(model_path).mkdir(parents=True, exist_ok=True)
    served = load_artifact(model_path) if model_path.exists() else None
    if served is not None and served.version != current_version:
        raise PromotionError(f"{model_path} changed while the candidate trained ({served.version}"
                             f", not {current_version}): run retrain again")
    previous = _archive(model_path, served) if served is not None else None
    _archive(model_path, candidate)
    _record(model_path, {"action": "promote", "from": current_version, "from_file": previous,
                         "to": candidate.version, "figures": figures})
    save_artifact(candidate, model_path)  # atomic: a temporary file, then os.replace


def rollback(model_path: Path) -> str:
    """Serve again the model the last promotion replaced; returns its version."""
    served = load_artifact(model_path).version if model_path.exists() else None
    entry = next((e for e in reversed(promotions(model_path))
                  if e["action"] == "promote" and e["to"] == served), None)
    if entry is None:
        raise PromotionError(f"nothing to roll back: {model_path} was not promoted by retrain"
                             if served else f"nothing to roll back: no {model_path}")
    if entry["from_file"] is None:
        model_path.unlink()  # the bot falls back to the zero-training model
        sync_folder(model_path.parent)
    else:
        replace_durably(model_path, (history_dir(model_path) / entry["from_file"]).read_bytes())
    _record(model_path, {"action": "rollback", "from": served, "from_file": None,
                         "to": entry["from"]})
    return entry["from"]
