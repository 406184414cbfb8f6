"""Settings: environment variables with the ``PARLEY_`` prefix, then an optional TOML file.

No configuration at all gives a working single-node chat (DESIGN §2 "Configuration"):
SQLite in ``./parley-data/``, in-process bus and jobs, a signing secret generated once and
kept in the data directory with 0600 permissions, listening on 127.0.0.1:8000.

The TOML file is ``$PARLEY_CONFIG_FILE`` or ``./parley.toml`` when it exists; keys are the
field names below without the prefix (``database_url = "postgresql://..."``).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from parley.redis_urls import parse_redis_url
from parley.url_text import check_url_text, shown_scheme

SECRET_FILE_NAME = "secret.key"
DATABASE_FILE_NAME = "parley.db"


def _config_file() -> Path | None:
    explicit = os.environ.get("PARLEY_CONFIG_FILE")
    if explicit:
        return Path(explicit)
    default = Path("parley.toml")
    return default if default.exists() else None


def _number_kind(annotation: Any) -> str | None:
    """``"float"`` or ``"int"`` for a number field (optional or not), else None."""
    kinds = get_args(annotation) or (annotation,)
    if float in kinds:
        return "float"
    if int in kinds:
        return "int"
    return None


class Settings(BaseSettings):
    # No setting is a NaN or an infinity: every float is a duration, a rate or a size, and
    # NaN compares false with every bound (it would slip past ``gt``/``le`` or be refused
    # with a misleading bound) while "inf" would mean "never" where a limit was asked for.
    # Both are refused as ``finite_number`` ("Input should be a finite number").
    model_config = SettingsConfigDict(env_prefix="PARLEY_", extra="ignore", frozen=True, allow_inf_nan=False)

    # --- serving
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    log_level: str = "info"
    access_log: bool = True
    # Origins allowed to call the API from another site; empty means CORS stays off.
    cors_origins: list[str] = []
    # Origins whose pages may open the WebSocket (gateway/origins.py); "*" allows any.
    # Empty: the origin of public_url, else the request's own host, plus cors_origins.
    allowed_origins: list[str] = []
    # Trust X-Forwarded-For from the load balancer for client addresses (throttling, logs).
    trust_proxy_headers: bool = False
    # Strict-Transport-Security max-age in seconds; 0 leaves it off. Set it only when every
    # client reaches Parley over HTTPS (browsers then refuse plain HTTP for that long).
    hsts_max_age: int = Field(default=0, ge=0)

    # The external base URL (scheme, host, optional path) used in emails, push payloads,
    # invite and export links. Unset: derived from the request where there is one.
    public_url: str | None = None

    # --- outbound HTTP (DESIGN §6.0; parley/outbound.py): push services, link previews,
    # webhooks. Private, loopback and link-local addresses are refused unless allowed here
    # (tests on loopback; intranet webhooks).
    outbound_allow_private: bool = False
    outbound_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    outbound_max_response_bytes: int = Field(default=1_048_576, ge=1024)
    # Networks never reached even when private addresses are allowed (cloud metadata).
    outbound_denied_networks: list[str] = ["169.254.0.0/16", "fe80::/10"]

    # --- storage
    data_dir: Path = Path("parley-data")
    database_url: str | None = None
    # SQLite `synchronous` pragma. FULL: an acknowledged message survives power loss;
    # NORMAL: it survives a killed process (kill -9) but the last commits may be lost on
    # power loss. Group commit keeps FULL cheap, so it is the default.
    sqlite_synchronous: str = "FULL"
    database_pool_size: int = Field(default=10, ge=1)
    # PostgreSQL streaming replicas for history, changes, search and conversation lists,
    # each used only once it has replayed what the read needs (store/replicas.py).
    database_replica_urls: list[str] = []
    redis_url: str | None = None
    # Prefix of every Redis key and channel, so several deployments can share one Redis.
    redis_key_prefix: str = "parley"
    # Redis Cluster only: presence is split into this many hash-tagged groups, the most
    # primaries it can spread over (presence/redis.py). Every node must use the same
    # number; changing it moves users between groups (restart all nodes together).
    redis_presence_groups: int = Field(default=16, ge=1, le=16384)

    # --- security
    secret_key: SecretStr | None = None
    access_token_ttl_seconds: int = Field(default=900, ge=10)
    refresh_token_ttl_days: int = Field(default=30, ge=1)
    # A rotated refresh token presented again within this many seconds gets a new token
    # (two tabs racing); later, it revokes the session as stolen.
    refresh_reuse_grace_seconds: float = Field(default=10.0, ge=0)
    # A session found open is trusted this long before the database is asked again
    # (services/session_cache.py): a revocation on another node or by a command takes
    # effect within it; on the revoking node at once. 0: every request reads the session.
    session_check_cache_seconds: float = Field(default=1.0, ge=0, le=60)
    # Argon2id cost; the defaults are argon2-cffi's RFC 9106 "low memory" profile.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)
    # Failed logins (docs/security.md "Login throttling"): failures allowed freely per
    # (username, address) pair — and per known device —, per address (higher: people share
    # addresses behind NAT) and per username from anywhere (higher still: it stops guessers
    # spread over many addresses, and the owner's known devices are exempt from it).
    login_failures_allowed: int = Field(default=5, ge=1)
    login_address_failures_allowed: int = Field(default=30, ge=1)
    login_username_failures_allowed: int = Field(default=50, ge=1)
    # Past an allowance the next attempt waits this long, doubling with each failure up to
    # the ceiling: a slowing guesser, never a locked account.
    login_backoff_base_seconds: float = Field(default=1.0, gt=0)
    login_backoff_max_seconds: float = Field(default=900.0, gt=0)
    # Failures are forgotten after this long without one (after the last wait ended).
    login_failure_window_seconds: int = Field(default=900, ge=1)
    # Lifetime of the device token a login hands out (it marks the device as known).
    login_device_token_days: int = Field(default=365, ge=1)
    # Accounts one client address may register per window (IPv6: per /64).
    registrations_per_address: int = Field(default=10, ge=1)
    registration_window_seconds: int = Field(default=3600, ge=1)
    # /metrics: a scraper sends "Authorization: Bearer <token>" when this is set; clients
    # from metrics_allow (addresses or networks) need none. With neither set, only loopback
    # clients may scrape.
    metrics_token: SecretStr | None = None
    metrics_allow: list[str] = []
    # Keys each kind of rate-limit state (per purpose: login, api, send, gateway) may hold
    # in memory; one purpose never evicts another's.
    rate_limit_max_keys: int = Field(default=100_000, ge=10)

    # --- limits (DESIGN §3)
    max_message_chars: int = Field(default=10_000, ge=1)
    max_group_members: int = Field(default=1_000, ge=2)
    max_request_body_bytes: int = Field(default=1_048_576, ge=1024)
    message_rate_per_second: float = Field(default=10.0, gt=0)
    message_burst: int = Field(default=20, ge=1)
    conversation_message_rate_per_second: float = Field(default=50.0, gt=0)
    conversation_message_burst: int = Field(default=100, ge=1)
    api_rate_per_second: float = Field(default=50.0, gt=0)
    api_burst: int = Field(default=200, ge=1)
    # Whether a direct conversation needs an accepted contact first.
    dm_requires_contact: bool = False

    # --- end-to-end encryption (DESIGN §6.1, docs/e2ee.md)
    # off: no encrypted conversations; optional: per conversation; required: every new
    # conversation is encrypted.
    e2ee: Literal["off", "optional", "required"] = "optional"
    # One-time prekeys a device may hold on the server (uploads past it are refused).
    e2ee_max_one_time_prekeys: int = Field(default=200, ge=1, le=10_000)
    # Undelivered to-device messages kept per device; past it the oldest are dropped
    # (counted in parley_e2ee_to_device_dropped_total): a device offline for months must
    # not grow the table without end, and its sessions recover by key requests.
    e2ee_inbox_max: int = Field(default=1000, ge=10)
    # A conversation ciphertext in base64url characters: a message of max_message_chars
    # 4-byte characters, encrypted and signed, fits, and so does its socket frame.
    e2ee_max_ciphertext_chars: int = Field(default=60_000, ge=256)
    # A to-device ciphertext (sender keys, key requests: small).
    e2ee_max_to_device_chars: int = Field(default=16_384, ge=256)
    # The key backup blob (fits the request body limit).
    e2ee_max_backup_chars: int = Field(default=900_000, ge=1024)

    # --- attachments (issue #6; limits from DESIGN §3)
    max_attachment_bytes: int = Field(default=25 * 1024 * 1024, ge=1)
    max_image_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    # Checked from the image header before decoding: decompression bombs never allocate.
    max_image_pixels: int = Field(default=50_000_000, ge=1)
    max_attachments_per_message: int = Field(default=10, ge=1, le=100)
    # Signed download URLs live between one and two of these (see attachment_urls).
    attachment_url_ttl_seconds: int = Field(default=3600, ge=10)
    # Uploads no message claimed are removed after this long.
    unclaimed_upload_ttl_seconds: int = Field(default=86_400, ge=60)
    attachment_sweep_interval_seconds: float = Field(default=600.0, gt=0)
    # All frames of an animation together (a 196 KB GIF of fifty 2000x2000 frames is 200
    # megapixels to decode and re-encode); samples deeper than 8 bits count double.
    max_image_total_pixels: int = Field(default=100_000_000, ge=1)
    # Image worker processes (decodes at once): a 50-megapixel decode holds a few hundred MB.
    image_processing_concurrency: int = Field(default=2, ge=1)
    # Link previews (services/link_previews.py): the page a message links to is fetched
    # server-side (through parley/outbound.py) for its title, description and picture.
    link_previews: bool = True
    # A URL's preview is reused for this long before it is fetched again.
    link_preview_ttl_seconds: int = Field(default=86_400, ge=60)
    # Address space of one image worker; past it the image is refused (the server's own
    # memory never grows). A 50-megapixel image with its thumbnails needs about 600 MB.
    image_worker_memory_mb: int = Field(default=1024, ge=64)
    # An image still being processed after this long is refused and its worker killed.
    image_worker_timeout_seconds: float = Field(default=30.0, gt=0)
    # "local": files under data_dir/media. "s3": an S3-compatible bucket (AWS, MinIO, ...).
    media_backend: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_prefix: str = ""

    # --- group commit (DESIGN §2 "Persistence")
    group_commit_window_ms: float = Field(default=2.0, ge=0)
    group_commit_max_batch: int = Field(default=256, ge=1)

    # --- real-time gateway (DESIGN §2 "Real-time gateway protocol"; docs/protocol.md)
    # permessage-deflate compresses every frame once per recipient: CPU on every fan-out
    # for bandwidth a chat rarely needs. Off unless clients are on slow links.
    gateway_compression: bool = False
    gateway_identify_timeout_seconds: float = Field(default=10.0, gt=0)
    # Clients ping this often; a connection silent for two intervals is closed (4010).
    gateway_heartbeat_interval_ms: int = Field(default=25_000, ge=100)
    # Largest client frame; a message of max_message_chars in 4-byte characters fits.
    gateway_max_frame_bytes: int = Field(default=65_536, ge=1024)
    # Frames queued per connection before a slow client is closed with 4009. Frames are
    # shared between recipients, so this bounds references, not copies.
    gateway_outbox_limit: int = Field(default=1_024, ge=1)
    # How long a closing connection may take to get its close frame out (a client that
    # stopped reading may never take it); then the socket is dropped.
    gateway_close_timeout_seconds: float = Field(default=10.0, gt=0, le=3_600)
    gateway_frame_rate_per_second: float = Field(default=20.0, gt=0)
    gateway_frame_burst: int = Field(default=60, ge=1)
    # Sockets one user may hold identified on one node at once; one more is refused with
    # 4029 TOO_MANY_CONNECTIONS (a runaway client reconnecting in a loop, a leaked tab farm).
    gateway_max_sockets_per_user: int = Field(default=32, ge=1)
    # Rate-limited frames in a row before the connection is closed with 4008.
    gateway_rate_limit_strikes: int = Field(default=10, ge=1)
    # Receipts per (conversation, member, kind) fold into one per window (0: no folding).
    gateway_receipt_throttle_ms: int = Field(default=1_000, ge=0)
    # A user goes offline this long after their last session closed (reloads don't flap).
    presence_offline_grace_seconds: float = Field(default=10.0, ge=0)
    # A node rewrites its presence entries every third of this; a node that dies stops, and
    # its users go offline by themselves this long after its last write (DESIGN §2).
    presence_ttl_seconds: float = Field(default=30.0, gt=0)
    # How often each node looks for expired presence entries: offline comes this much
    # after the grace period at most.
    presence_sweep_interval_seconds: float = Field(default=1.0, gt=0)

    # --- notifications (DESIGN §6.2; docs/operations.md "Notifications")
    # Web Push: a message still unread this long after it was sent is pushed. A device that
    # shows the conversation marks it read within about half a second, so this is the
    # window in which "reading it on any device" is seen (see notifications/rules.py).
    push_delay_seconds: float = Field(default=2.0, ge=0, le=3600)
    # At most one push per conversation per device this often; later messages are folded
    # into one follow-up push when the window ends.
    push_coalesce_seconds: float = Field(default=5.0, ge=0, le=3600)
    # How long a push service keeps an undelivered push (RFC 8030 TTL).
    push_ttl_seconds: int = Field(default=86_400, ge=0, le=2_419_200)
    # VAPID (RFC 8292): the P-256 private key (PEM, or the raw key in base64url). Unset: one
    # is generated on first start into the data directory (vapid_private_key.pem, 0600).
    # Every node must use the same key: set it (or share the data directory) when scaling out.
    vapid_private_key: SecretStr | None = None
    # The contact push services see in the VAPID token: mailto: or https: URL.
    vapid_subject: str | None = None
    # Email digests of missed DMs and mentions: a message unread this long is mailed.
    email_notify_delay_seconds: float = Field(default=300.0, ge=0)
    # How often each node looks for digests that are due (a digest is at most this late).
    email_digest_sweep_seconds: float = Field(default=30.0, gt=0)
    # smtp://user:pass@host:port (STARTTLS when offered), smtps://... (TLS from the start).
    # Unset: no email is sent (addresses cannot be verified, no digests).
    smtp_url: str | None = None
    # "auto": STARTTLS when the server offers it; "required": refuse a server without it;
    # "off": plain SMTP (a relay on localhost).
    smtp_starttls: Literal["auto", "required", "off"] = "auto"
    smtp_from: str = "Parley <parley@localhost>"
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    # Verification links in emails stay valid this long.
    email_verification_ttl_hours: int = Field(default=48, ge=1)

    # --- data lifecycle (DESIGN §6.4; docs/lifecycle.md)
    # Site retention policy: messages older than this many days are deleted (a
    # conversation's own retention_days overrides it). Unset: kept forever.
    retention_days: int | None = Field(default=None, ge=1, le=36_500)
    # Write expired messages as gzip'd JSON Lines to the media store before deleting them.
    retention_archive: bool = False
    # How often each node queues the retention sweep (daily; the sweep is idempotent).
    retention_sweep_interval_seconds: float = Field(default=86_400.0, gt=0)
    # Messages deleted per transaction: a sweep never holds a conversation's lock for long.
    retention_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Erasure of an account: "erase" turns the user's messages into tombstones; "anonymise"
    # keeps them, shown as from "Deleted user". Profile, uploads and sessions go either way.
    erasure_mode: Literal["erase", "anonymise"] = "erase"
    # Exports (ZIP archives) are deleted this long after they were requested.
    export_ttl_days: int = Field(default=7, ge=1, le=365)
    # Exports one user may request per day (each reads everything they ever sent).
    exports_per_day: int = Field(default=3, ge=1)
    # --- accounts and administration (DESIGN §6.3)
    # Who may register: everyone, holders of an invite link, or nobody. Administrators can
    # change it at run time (the admin console); this is the value until they do.
    registration: Literal["open", "invite", "closed"] = "open"
    # A mailed password reset link works once, for this long.
    password_reset_ttl_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # A reset link an administrator hands over (no SMTP needed) works once, for this long.
    admin_reset_link_ttl_hours: int = Field(default=24, ge=1, le=24 * 30)
    # Audit entries older than this are deleted by a daily job.
    audit_retention_days: int = Field(default=90, ge=1)
    # The issuer shown in authenticator apps next to the account name.
    totp_issuer: str = Field(default="Parley", min_length=1, max_length=64)
    # --- integrations (DESIGN §6.6; docs/integrations.md)
    # Bots one user may own (webhook bots not counted).
    max_bots_per_user: int = Field(default=25, ge=0, le=10_000)
    # Posts one incoming webhook may make: a steady rate per minute and a burst.
    webhook_rate_per_minute: float = Field(default=60.0, gt=0)
    webhook_burst: int = Field(default=20, ge=1)
    # Outgoing webhook deliveries: attempts per message, the first retry's delay (doubling
    # each time, at most an hour), and consecutive failed deliveries before the webhook is
    # disabled (its owner re-enables it).
    webhook_max_attempts: int = Field(default=5, ge=1, le=20)
    webhook_retry_base_seconds: float = Field(default=10.0, gt=0)
    webhook_max_failures: int = Field(default=10, ge=1)

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_booleans_as_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """TOML's ``true``/``false`` would pass a number field as 1/0 (pydantic's lax mode);
        a flag where a number belongs is a mistake, refused as pydantic refuses a list there."""
        if isinstance(value, bool) and info.field_name is not None:
            kind = _number_kind(cls.model_fields[info.field_name].annotation)
            if kind == "float":
                raise PydanticCustomError("float_type", "Input should be a valid number")
            if kind == "int":
                raise PydanticCustomError("int_type", "Input should be a valid integer")
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme, sep, rest = value.partition("://")
        if scheme not in ("http", "https") or not sep or not rest.strip("/"):
            raise ValueError("must be an http:// or https:// URL, e.g. https://chat.example.com")
        return value.rstrip("/")

    @field_validator("database_url", "database_replica_urls")
    @classmethod
    def _check_database_urls(cls, value: str | list[str] | None) -> str | list[str] | None:
        for url in [value] if isinstance(value, str) else value or []:
            check_url_text(url)
            if url and not url.startswith(_DATABASE_SCHEMES):  # "": the default database
                raise ValueError(
                    f"unsupported database ({shown_scheme(url)}): use sqlite:///path/to/file.db "
                    "or postgresql://user@host/name"
                )
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parse_redis_url(value)  # ValueError says what is wrong
        return value

    @field_validator("outbound_denied_networks", "metrics_allow")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
        return value

    @field_validator("sqlite_synchronous")
    @classmethod
    def _check_synchronous(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError("must be one of OFF, NORMAL, FULL, EXTRA")
        return upper

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _config_file()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    # --- derived values

    @property
    def effective_database_url(self) -> str:
        """The SQLAlchemy async URL: asyncpg for PostgreSQL, aiosqlite for SQLite."""
        url = self.database_url or f"sqlite:///{self.data_dir / DATABASE_FILE_NAME}"
        return normalise_database_url(url)

    @property
    def effective_replica_urls(self) -> list[str]:
        return [normalise_database_url(url) for url in self.database_replica_urls]

    @property
    def media_dir(self) -> Path:
        """Where the local blob store keeps attachment files."""
        return self.data_dir / "media"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def signing_secret(self) -> str:
        """The JWT / URL signing secret: configured, or generated once into the data dir."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return load_or_create_secret(self.data_dir / SECRET_FILE_NAME)

    def masked(self) -> dict[str, Any]:
        """Effective settings for display, secrets and passwords in URLs masked."""
        shown: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr) or name == "secret_key":
                shown[name] = "********" if value is not None else None
            elif name in {"database_url", "redis_url", "smtp_url"} and value:
                shown[name] = mask_url_password(str(value))
            elif name == "database_replica_urls":
                shown[name] = [mask_url_password(str(url)) for url in value]
            else:
                shown[name] = str(value) if isinstance(value, Path) else value
        shown["effective_database_url"] = mask_url_password(self.effective_database_url)
        return shown


# What normalise_database_url accepts (with its driver named, or without).
_DATABASE_SCHEMES = (
    "sqlite://", "sqlite+aiosqlite://", "postgres://", "postgresql://", "postgresql+asyncpg://",
)


def normalise_database_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def mask_url_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user, has_password, _ = credentials.partition(":")
    return f"{scheme}://{user}{':********' if has_password else ''}@{host}"


def load_or_create_secret(path: Path) -> str:
    """Read the secret at ``path``, creating it (0600) the first time."""
    secret = load_or_create_file(path, lambda: secrets.token_urlsafe(48)).strip()
    if not secret:
        raise RuntimeError(f"{path} is empty; delete it to generate a new secret")
    return secret


def load_or_create_file(path: Path, make: Callable[[], str]) -> str:
    """Read the private file at ``path``, writing ``make()`` into it (0600) the first time.

    The content is written to a private temporary file and hard-linked into place, which
    fails if the file exists: workers starting at once agree on one complete file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(make())
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass
        finally:
            temporary.unlink(missing_ok=True)
    return path.read_text()
