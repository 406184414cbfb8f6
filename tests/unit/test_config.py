"""Settings: defaults, URL handling, the generated secret, masking, the TOML file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from parley.config import Settings, load_or_create_secret, mask_url_password, normalise_database_url


def test_defaults_need_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.host == "127.0.0.1" and settings.port == 8000
    assert settings.effective_database_url == "sqlite+aiosqlite:///parley-data/parley.db"
    assert settings.is_sqlite


def test_secret_is_generated_once_with_private_permissions(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret.key"
    first = load_or_create_secret(path)
    assert len(first) >= 48
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == first


def test_database_urls() -> None:
    assert normalise_database_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_database_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_database_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert mask_url_password("postgresql://u:secret@h/db") == "postgresql://u:********@h/db"
    assert mask_url_password("redis://h:6379") == "redis://h:6379"


def test_masked_settings_hide_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_SECRET_KEY", "very-secret-value-" * 3)
    monkeypatch.setenv("PARLEY_DATABASE_URL", "postgresql://parley:hunter2@db/parley")
    shown = str(Settings().masked())
    assert "very-secret-value" not in shown and "hunter2" not in shown


def test_toml_file_and_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "parley.toml"
    config.write_text('port = 9001\nhost = "0.0.0.0"\n')
    monkeypatch.setenv("PARLEY_CONFIG_FILE", str(config))
    monkeypatch.setenv("PARLEY_PORT", "9002")
    settings = Settings()
    assert settings.host == "0.0.0.0" and settings.port == 9002


def test_bad_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_SQLITE_SYNCHRONOUS", "sometimes")
    with pytest.raises(ValueError):
        Settings()
