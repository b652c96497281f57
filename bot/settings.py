"""One typed settings object, read from ``BEACON_*`` environment variables.

Every process (gateway, action server, CLI) reads its configuration here, so a
deployment is described by its environment alone (see ``.env.example``).
The embedded default needs no variable at all: SQLite and generated keys under
``var/``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from exc


def _path(name: str, default: Path) -> Path:
    raw = os.environ.get(name)
    return Path(raw).expanduser().resolve() if raw else default


@dataclass(frozen=True)
class Settings:
    """Beacon's configuration; build it with :func:`get_settings`."""

    root: Path = ROOT
    var_dir: Path = ROOT / "var"
    host: str = "127.0.0.1"
    port: int = 8000
    rasa_port: int = 5005
    actions_port: int = 5055
    database_url: str = ""
    internal_token: str = ""
    secret_keys: tuple[str, ...] = ()
    hash_key: str = ""
    #: Hash keys used before ``hash_key`` (``BEACON_HASH_KEY=new,old``): a block
    #: on a deleted person's address, keyed with an old one, still matches.
    previous_hash_keys: tuple[str, ...] = ()
    model_dir: Path = ROOT / "models"
    model_cache: Path = field(default_factory=lambda: Path.home() / ".cache" / "beacon" / "models")
    log_level: str = "INFO"
    log_format: str = "json"
    public_url: str = ""
    quick_exit_url: str = "https://www.google.com/"
    #: The name the web chat shows (its title): harmless on a watched screen.
    #: Empty: the neutral "Chat", translated.
    cover_name: str = ""
    # Handoff queue.
    queue_aging_minutes: int = 60
    holding_interval_minutes: int = 30
    reopen_hours: int = 72
    # SLA paging.
    page_critical_after_s: int = 120
    page_high_after_s: int = 3600
    page_backoff_max_s: int = 1800
    paging_interval_s: int = 15
    paging_language: str = "en"
    paging_telegram_token: str = ""
    paging_telegram_chat_id: str = ""
    telegram_api_base: str = "https://api.telegram.org/bot"
    twilio_api_base: str = "https://api.twilio.com"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from: str = ""
    paging_sms_to: tuple[str, ...] = ()
    # Channels (Telegram and SMS: off without credentials).
    telegram_token: str = ""
    telegram_webhook_secret: str = ""
    #: "webhook" (Telegram posts to /telegram/webhook; needs public_url) or "poll".
    telegram_mode: str = "poll"
    #: The URL Twilio signs its webhook requests with (behind a proxy, not the one we see).
    twilio_sms_url: str = ""
    twilio_status_url: str = ""
    send_max_attempts: int = 8
    #: Messages per minute from one person that get an answer; more are kept and
    #: screened (a flood still raises urgency) but not answered. 0: no limit.
    rate_limit_per_minute: int = 20
    # Retention (days; 0 keeps forever) and the gateway's scheduled purge.
    retention_unescalated_days: int = 30
    retention_resolved_days: int = 180
    #: Blocks that ended (expired or lifted) are deleted this many days later.
    retention_blocks_days: int = 30
    purge_interval_hours: int = 24
    # Responder console.
    console_session_hours: int = 12
    login_max_failures: int = 5
    login_lockout_minutes: int = 15

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_token)

    @property
    def sms_enabled(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token and self.twilio_from)

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def actions_url(self) -> str:
        return f"http://127.0.0.1:{self.actions_port}"

    @property
    def gateway_url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return self.public_url or f"http://{shown}:{self.port}"


def _embedded_secret(var_dir: Path, name: str, make: str) -> str:
    """Reads (or creates, mode 0600) a key file under ``var/`` for the embedded default."""
    path = var_dir / name
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    value = Fernet.generate_key().decode() if make == "fernet" else secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def load_settings() -> Settings:
    """Builds settings from the environment (no caching; tests call this)."""
    var_dir = _path("BEACON_VAR_DIR", ROOT / "var")
    database_url = os.environ.get("BEACON_DATABASE_URL") or f"sqlite:///{var_dir / 'beacon.db'}"
    raw_keys = os.environ.get("BEACON_SECRET_KEY", "")
    keys = tuple(k.strip() for k in raw_keys.split(",") if k.strip())
    if not keys:
        keys = (_embedded_secret(var_dir, "secret.key", "fernet"),)
    raw_hash = os.environ.get("BEACON_HASH_KEY", "")
    hash_keys = tuple(k.strip() for k in raw_hash.split(",") if k.strip())
    if not hash_keys:
        hash_keys = (_embedded_secret(var_dir, "hash.key", "hex"),)
    hash_key = hash_keys[0]
    public_url = os.environ.get("BEACON_PUBLIC_URL", "").rstrip("/")
    return Settings(
        var_dir=var_dir,
        host=os.environ.get("BEACON_HOST", "127.0.0.1"),
        port=_int("BEACON_PORT", 8000),
        rasa_port=_int("BEACON_RASA_PORT", 5005),
        actions_port=_int("BEACON_ACTIONS_PORT", 5055),
        database_url=database_url,
        internal_token=os.environ.get("BEACON_INTERNAL_TOKEN", ""),
        secret_keys=keys,
        hash_key=hash_key,
        previous_hash_keys=hash_keys[1:],
        model_dir=_path("BEACON_MODEL_DIR", ROOT / "models"),
        model_cache=_path("BEACON_MODEL_CACHE", Path.home() / ".cache" / "beacon" / "models"),
        log_level=os.environ.get("BEACON_LOG_LEVEL", "INFO").upper(),
        log_format=os.environ.get("BEACON_LOG_FORMAT", "json"),
        public_url=public_url,
        quick_exit_url=os.environ.get("BEACON_QUICK_EXIT_URL", "https://www.google.com/"),
        cover_name=os.environ.get("BEACON_COVER_NAME", "").strip(),
        queue_aging_minutes=_int("BEACON_QUEUE_AGING_MINUTES", 60),
        holding_interval_minutes=_int("BEACON_HOLDING_INTERVAL_MINUTES", 30),
        reopen_hours=_int("BEACON_REOPEN_HOURS", 72),
        page_critical_after_s=_int("BEACON_PAGE_CRITICAL_AFTER_S", 120),
        page_high_after_s=_int("BEACON_PAGE_HIGH_AFTER_S", 3600),
        page_backoff_max_s=_int("BEACON_PAGE_BACKOFF_MAX_S", 1800),
        paging_interval_s=_int("BEACON_PAGING_INTERVAL_S", 15),
        paging_language=os.environ.get("BEACON_PAGING_LANGUAGE", "en"),
        paging_telegram_token=os.environ.get("BEACON_PAGING_TELEGRAM_TOKEN", ""),
        paging_telegram_chat_id=os.environ.get("BEACON_PAGING_TELEGRAM_CHAT_ID", ""),
        telegram_api_base=os.environ.get(
            "BEACON_TELEGRAM_API_BASE", "https://api.telegram.org/bot"
        ),
        twilio_api_base=os.environ.get("BEACON_TWILIO_API_BASE", "https://api.twilio.com").rstrip(
            "/"
        ),
        twilio_account_sid=os.environ.get("BEACON_TWILIO_ACCOUNT_SID", ""),
        twilio_auth_token=os.environ.get("BEACON_TWILIO_AUTH_TOKEN", ""),
        twilio_from=os.environ.get("BEACON_TWILIO_FROM", ""),
        paging_sms_to=tuple(
            n.strip() for n in os.environ.get("BEACON_PAGING_SMS_TO", "").split(",") if n.strip()
        ),
        telegram_token=os.environ.get("BEACON_TELEGRAM_TOKEN", ""),
        # Unset: one generated in var/ (shared by the gateway and `beacon telegram poll`).
        telegram_webhook_secret=os.environ.get("BEACON_TELEGRAM_WEBHOOK_SECRET")
        or (
            _embedded_secret(var_dir, "telegram-webhook.secret", "hex")
            if os.environ.get("BEACON_TELEGRAM_TOKEN")
            else ""
        ),
        telegram_mode=os.environ.get("BEACON_TELEGRAM_MODE")
        or ("webhook" if public_url.startswith("https://") else "poll"),
        twilio_sms_url=os.environ.get("BEACON_TWILIO_SMS_URL")
        or (f"{public_url}/twilio/sms" if public_url else ""),
        twilio_status_url=os.environ.get("BEACON_TWILIO_STATUS_URL")
        or (f"{public_url}/twilio/status" if public_url else ""),
        send_max_attempts=_int("BEACON_SEND_MAX_ATTEMPTS", 8),
        rate_limit_per_minute=_int("BEACON_RATE_LIMIT_PER_MINUTE", 20),
        retention_unescalated_days=_int("BEACON_RETENTION_UNESCALATED_DAYS", 30),
        retention_resolved_days=_int("BEACON_RETENTION_RESOLVED_DAYS", 180),
        retention_blocks_days=_int("BEACON_RETENTION_BLOCKS_DAYS", 30),
        purge_interval_hours=_int("BEACON_PURGE_INTERVAL_HOURS", 24),
        console_session_hours=_int("BEACON_CONSOLE_SESSION_HOURS", 12),
        login_max_failures=_int("BEACON_LOGIN_MAX_FAILURES", 5),
        login_lockout_minutes=_int("BEACON_LOGIN_LOCKOUT_MINUTES", 15),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
