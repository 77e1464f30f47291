"""Settings from environment variables, with defaults that work on a laptop."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from model import DEFAULT_VARIANT, MODELS

DATA_DIR = Path(os.environ.get("WHATBREED_DATA", "var"))
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'whatbreed.db'}")
PHOTO_DIR = DATA_DIR / "photos"
PROMOTED_MODEL = DATA_DIR / "model.whatbreed"  # where scripts/retrain.py puts a better model


def _user_salt(data_dir: Path) -> str:
    """$WHATBREED_USER_SALT, else a random salt kept in var/ so user hashes stay stable."""
    if salt := os.environ.get("WHATBREED_USER_SALT"):
        return salt
    path = data_dir / "user_salt"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


@dataclass(frozen=True)
class ModelSource:
    """Which model the bot serves: a zero-training variant, or a model file it watches."""

    name: str  # a variant ("lite2") or the path of a model file
    fallback: str | None = None  # served while the file is absent; None: the file must exist

    @classmethod
    def from_setting(cls, setting: str | None) -> ModelSource:
        """$WHATBREED_MODEL as given; unset, the promoted model once there is one."""
        return cls(setting) if setting else cls(str(PROMOTED_MODEL), DEFAULT_VARIANT)

    @property
    def watched(self) -> Path | None:
        """The model file whose changes are loaded without a restart; None for a variant."""
        return None if self.name in MODELS else Path(self.name)

    def to_load(self) -> str:
        """What to load now (at start and on each reload): a variant or a model file."""
        if self.fallback is not None and not Path(self.name).exists():
            return self.fallback
        return self.name


@dataclass(frozen=True)
class Settings:
    token: str | None  # None: run the local playground instead of Telegram
    database_url: str
    photo_dir: Path
    model: ModelSource
    user_salt: str
    api_url: str | None = None  # another Bot API server's root, e.g. a local telegram-bot-api

    @classmethod
    def from_env(cls) -> Settings:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        return cls(
            token=os.environ.get("TELEGRAM_BOT_TOKEN") or None,
            database_url=DATABASE_URL,
            photo_dir=PHOTO_DIR,
            model=ModelSource.from_setting(os.environ.get("WHATBREED_MODEL")),
            user_salt=_user_salt(DATA_DIR),
            api_url=os.environ.get("TELEGRAM_API_URL") or None,
        )
