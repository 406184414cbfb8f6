"""Settings: defaults, URL handling, the generated secret, masking, the TOML file, bad
values refused with pydantic's error for the field (its ``type`` is the stable part), and
the ``parley`` command saying what is wrong with them without a traceback."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from parley import cli
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


@pytest.mark.parametrize(
    "url",
    ["mysql://u@h/db", "h/db", "redis://h", "sqlite:/x.db", "postgresql:/h/db", " sqlite:///x.db"],
)
def test_only_sqlite_and_postgresql_database_urls_are_taken(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    assert refusal(monkeypatch, "database_url", url) == [("database_url", "value_error")]
    monkeypatch.delenv("PARLEY_DATABASE_URL")
    assert refusal(monkeypatch, "database_replica_urls", f'["postgresql://r/db", "{url}"]') == [
        ("database_replica_urls", "value_error")
    ]


@pytest.mark.parametrize(("name", "before", "after"), [
    ("database_url", "sqlite:///x", ".db"),
    ("redis_url", "redis://h:6379/0", ""),
])
def test_control_characters_in_a_url_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, before: str, after: str
) -> None:
    # A NUL byte cannot be in an environment variable: TOML writes it as \u0000.
    assert toml_refusal(tmp_path, monkeypatch, f'{name} = "{before}\\u0000{after}"') == [(name, "value_error")]
    monkeypatch.delenv("PARLEY_CONFIG_FILE")
    assert refusal(monkeypatch, name, f"{before}\n{after}") == [(name, "value_error")]


def test_a_malformed_database_url_is_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_DATABASE_URL", "u:hunter2://h/db")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "hunter2" not in cli.settings_error_text(refused.value)


@pytest.mark.parametrize("url", ["", "sqlite:///x.db", "postgres://u@h/db", "postgresql+asyncpg://u@h/db"])
def test_sqlite_and_postgresql_database_urls_are_taken(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("PARLEY_DATABASE_URL", url)
    assert Settings().database_url == url


def test_the_command_says_what_is_wrong_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PARLEY_PORT", "abc")
    monkeypatch.setenv("PARLEY_DATABASE_URL", "mysql://u:hunter2@db/x")
    monkeypatch.setenv("PARLEY_MAX_MESSAGE_CHARS", "nan")
    for command in (["serve"], ["check-config"], ["migrate"]):
        assert cli.main(command) == 2
        lines = capsys.readouterr().err.splitlines()
        assert lines[0].startswith("error: invalid settings")
        assert lines[1] == (
            "  PARLEY_PORT: Input should be a valid integer, unable to parse string as an integer (given: 'abc')"
        )
        # A URL may hold a password: never echoed.
        assert lines[2].startswith("  PARLEY_DATABASE_URL: unsupported database ('mysql')")
        assert "hunter2" not in lines[2]
        assert lines[3].startswith("  PARLEY_MAX_MESSAGE_CHARS: ") and len(lines) == 4


CLOSE_TIMEOUT = "gateway_close_timeout_seconds"


def toml_refusal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str) -> list[tuple[str, str]]:
    """(field, pydantic error type) for each error a parley.toml of ``line`` gives."""
    config = tmp_path / "parley.toml"
    config.write_text(line + "\n")
    monkeypatch.setenv("PARLEY_CONFIG_FILE", str(config))
    with pytest.raises(ValidationError) as refused:
        Settings()
    return [(".".join(map(str, error["loc"])), error["type"]) for error in refused.value.errors()]


def refusal(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> list[tuple[str, str]]:
    """(field, pydantic error type) for each error ``PARLEY_<NAME>=value`` gives: the type is
    the stable part of the message (``float_parsing``, ``greater_than``...)."""
    monkeypatch.setenv(f"PARLEY_{name.upper()}", value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    return [(".".join(map(str, error["loc"])), error["type"]) for error in refused.value.errors()]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("ten", "float_parsing"),
        ("", "float_parsing"),
        ("true", "float_parsing"),
        ("0x10", "float_parsing"),
        ("-1", "greater_than"),
        ("-0.001", "greater_than"),
        ("0", "greater_than"),  # no time at all to send the close frame
        ("nan", "finite_number"),
        ("NaN", "finite_number"),
        ("inf", "finite_number"),
        ("-Infinity", "finite_number"),
        ("1e999", "finite_number"),  # parses to infinity
        ("9" * 400, "finite_number"),
        ("3601", "less_than_equal"),
        ("1e308", "less_than_equal"),
    ],
)
def test_bad_gateway_close_timeouts_are_refused(monkeypatch: pytest.MonkeyPatch, value: str, error: str) -> None:
    assert refusal(monkeypatch, CLOSE_TIMEOUT, value) == [(CLOSE_TIMEOUT, error)]


@pytest.mark.parametrize(("value", "seconds"), [("0.001", 0.001), ("10", 10.0), (" 30 ", 30.0), ("3600", 3600.0)])
def test_good_gateway_close_timeouts_are_taken(monkeypatch: pytest.MonkeyPatch, value: str, seconds: float) -> None:
    monkeypatch.setenv("PARLEY_GATEWAY_CLOSE_TIMEOUT_SECONDS", value)
    assert Settings().gateway_close_timeout_seconds == seconds


@pytest.mark.parametrize(
    ("value", "error"),
    [("true", "float_type"), ('"soon"', "float_parsing"), ("[10]", "float_type"), ("nan", "finite_number"),
     ("inf", "finite_number"), ("-inf", "finite_number"), ("0", "greater_than"), ("86400", "less_than_equal")],
)  # fmt: skip
def test_bad_gateway_close_timeouts_in_the_toml_file_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, error: str
) -> None:
    """TOML has booleans, NaN and infinities of its own, beside what the environment can say."""
    assert toml_refusal(tmp_path, monkeypatch, f"{CLOSE_TIMEOUT} = {value}") == [(CLOSE_TIMEOUT, error)]


def number_types(name: str) -> set[object]:
    annotation = Settings.model_fields[name].annotation
    return {int, float} & {annotation, *get_args(annotation)}


NUMBER_FIELDS = sorted(name for name in Settings.model_fields if number_types(name))


@pytest.mark.parametrize("name", NUMBER_FIELDS)
def test_no_number_setting_is_nan_infinite_or_a_boolean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """What the close timeout refuses, every number setting refuses the same way: NaN and
    infinities (float settings; an int setting cannot parse them), and TOML's ``true``."""
    is_float = float in number_types(name)
    for value in ("nan", "inf", "-inf"):
        assert refusal(monkeypatch, name, value) == [(name, "finite_number" if is_float else "int_parsing")]
    monkeypatch.delenv(f"PARLEY_{name.upper()}")
    config = tmp_path / "parley.toml"
    config.write_text(f"{name} = true\n")
    monkeypatch.setenv("PARLEY_CONFIG_FILE", str(config))
    with pytest.raises(ValidationError) as refused:
        Settings()
    expected = "float_type" if is_float else "int_type"
    assert [(e["loc"], e["type"]) for e in refused.value.errors()] == [((name,), expected)]
