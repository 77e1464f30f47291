"""Settings from environment variables, with defaults that work on a laptop."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from model import DEFAULT_VARIANT, MATMUL_SETTINGS, MODELS

DATA_DIR = Path(os.environ.get("WHATBREED_DATA", "var"))
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'whatbreed.db'}")
PHOTO_DIR = DATA_DIR / "photos"
PROMOTED_MODEL = DATA_DIR / "model.whatbreed"  # where scripts/retrain.py puts a better model
COMPILE_CACHE = DATA_DIR / "jax-cache"  # compiled functions, for a quick restart
FEATURE_CACHE = DATA_DIR / "cache" / "features"  # backbone features scripts/retrain.py keeps
# Photos classified in one call at most; 1 turns micro-batching off. On a quiet 2-CPU machine
# batches of up to 8 answered a rush of 100 photos 13-19% faster than one photo a call, since
# batches run unpadded (README, "The bot under load").
DEFAULT_MAX_BATCH = 8
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what Telegram takes as a webhook's secret


class ConfigError(ValueError):
    """A setting the bot cannot work with; str(error) names it and says what it must be."""


def _kept_secret(variable: str, path: Path) -> str:
    """$variable, else a random secret kept at ``path`` (under var/), so that restarts keep it.

    Bot processes sharing the folder must agree on it, also when they start at once: the secret
    is written aside (readable by its owner only) and linked into place, which only the first
    process manages; every process then reads that one.
    """
    if value := os.environ.get(variable):
        return value
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, written = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
        try:
            os.write(fd, secrets.token_hex(32).encode())
            os.close(fd)
            with contextlib.suppress(FileExistsError):
                os.link(written, path)
        finally:
            os.unlink(written)
    return path.read_text().strip()


def _whole_number(variable: str, default: int, low: int, high: float, must_be: str) -> int:
    """$variable as a whole number from ``low`` to ``high``; ConfigError saying it ``must_be``
    otherwise."""
    text = os.environ.get(variable) or str(default)
    # Digits 0-9 only: str.isdigit takes "²" too, which int() refuses.
    if not re.fullmatch(r"[0-9]+", text) or not low <= int(text) <= high:
        raise ConfigError(f"{variable} must be {must_be}, not {text!r}")
    return int(text)


def _port(variable: str, default: int) -> int:
    return _whole_number(variable, default, 1, 65535, "a port number (1-65535)")


def max_batch_setting() -> int:
    """$WHATBREED_MAX_BATCH: photos in one model call at most; ConfigError for a bad one."""
    return _whole_number("WHATBREED_MAX_BATCH", DEFAULT_MAX_BATCH, 1, float("inf"),
                         "a whole number of at least 1 (1: no micro-batching)")


def matmul_setting() -> str:
    """$WHATBREED_MATMUL: the backbone's 1×1 products, "auto" (bfloat16 where the CPU has
    bfloat16 dot products), "float32" or "bfloat16"; ConfigError for anything else."""
    text = os.environ.get("WHATBREED_MATMUL") or "auto"
    if text not in MATMUL_SETTINGS:
        *others, last = MATMUL_SETTINGS
        raise ConfigError(f"WHATBREED_MATMUL must be {', '.join(others)} or {last}, not {text!r}")
    return text


def _webhook_url(url: str) -> str:
    """``url`` if Telegram could POST to it. Telegram itself wants HTTPS on port 443, 80, 88 or
    8443 and says so when the bot sets the webhook; plain HTTP serves a local Bot API server."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:  # Python says why, e.g. "Port out of range 0-65535"
        raise ConfigError(f"WEBHOOK_URL {url!r} is malformed: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"WEBHOOK_URL must be an https:// (or http://) URL, not {url!r}")
    if port == 0:
        raise ConfigError(f"WEBHOOK_URL {url!r} is malformed: port 0")
    return url


@dataclass(frozen=True)
class Webhook:
    """Telegram POSTs the updates to ``url`` instead of the bot polling for them. A web server
    there forwards them to ``listen:port``, where python-telegram-bot's webhook server answers
    the URL's own path and refuses any request without ``secret`` in its header."""

    url: str  # public, given to setWebhook
    listen: str
    port: int
    secret: str = field(repr=False)  # Telegram's secret_token

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    @classmethod
    def from_env(cls, data_dir: Path) -> Webhook | None:
        """$WEBHOOK_URL and its companions; None (long polling) without a URL."""
        if not (url := os.environ.get("WEBHOOK_URL")):
            return None
        url, port = _webhook_url(url), _port("WEBHOOK_PORT", 8443)
        secret = _kept_secret("WEBHOOK_SECRET", data_dir / "webhook_secret")
        if not SECRET_TOKEN.fullmatch(secret):  # not quoted: it is a secret
            raise ConfigError("WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return cls(url, os.environ.get("WEBHOOK_LISTEN") or "127.0.0.1", port, secret)


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
    webhook: Webhook | None = None  # None: long polling
    max_batch: int = DEFAULT_MAX_BATCH  # 1: each photo classified alone (no batching)
    matmul: str = "auto"  # the backbone's 1×1 products (Predictor's ``matmul``)
    compile_cache: Path = COMPILE_CACHE
    feature_cache: Path = FEATURE_CACHE  # what /forget deletes besides photos and rows

    @classmethod
    def from_env(cls) -> Settings:
        """The settings; ConfigError for one the bot cannot work with."""
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        return cls(
            token=os.environ.get("TELEGRAM_BOT_TOKEN") or None,
            database_url=DATABASE_URL,
            photo_dir=PHOTO_DIR,
            model=ModelSource.from_setting(os.environ.get("WHATBREED_MODEL")),
            user_salt=_kept_secret("WHATBREED_USER_SALT", DATA_DIR / "user_salt"),
            api_url=os.environ.get("TELEGRAM_API_URL") or None,
            webhook=Webhook.from_env(DATA_DIR),
            max_batch=max_batch_setting(),
            matmul=matmul_setting(),
            compile_cache=Path(os.environ.get("WHATBREED_COMPILE_CACHE") or COMPILE_CACHE),
        )
