"""Settings from environment variables, with defaults that work on a laptop."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from model import DEFAULT_VARIANT

DATA_DIR = Path(os.environ.get("WHATBREED_DATA", "var"))


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
class Settings:
    token: str | None  # None: run the local playground instead of Telegram
    database_url: str
    photo_dir: Path
    model: str
    user_salt: str
    api_url: str | None = None  # another Bot API server's root, e.g. a local telegram-bot-api

    @classmethod
    def from_env(cls) -> Settings:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        return cls(
            token=os.environ.get("TELEGRAM_BOT_TOKEN") or None,
            database_url=os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'whatbreed.db'}"),
            photo_dir=DATA_DIR / "photos",
            model=os.environ.get("WHATBREED_MODEL", DEFAULT_VARIANT),
            user_salt=_user_salt(DATA_DIR),
            api_url=os.environ.get("TELEGRAM_API_URL") or None,
        )
