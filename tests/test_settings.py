"""Config precedence and provenance: flag > environment > profile > file defaults > built-in."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from tui.cli import main
from tui.paths import locations
from tui.settings import (
    ConfigError,
    Settings,
    ensure_config_file,
    load_settings,
    profile_args,
    profile_summaries,
)

CONFIG = """
[defaults]
theme = "nord"
bell = false

[cadence]
young_s = 5

[keymap]
"batches.refresh" = "f5,r"

[profiles.default]
api_key_env = "MY_KEY"

[profiles.prod]
base_url = "http://127.0.0.1:9"
read_only = true
api_key_command = "echo secret"

[profiles.prod.cadence]
old_s = 600
"""


def write_config(text: str) -> Path:
    path = locations().config_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_builtin_defaults_without_a_file() -> None:
    settings = load_settings(environ={})
    assert settings.profile == "default"
    assert settings.api_key_env == "ANTHROPIC_API_KEY"
    assert settings.cadence.young_s == 10
    assert settings.source.get("theme", "built-in") == "built-in"


def test_file_then_profile_then_env_then_flag() -> None:
    write_config(CONFIG)
    plain = load_settings(environ={})
    assert plain.theme == "nord" and plain.bell is False
    assert plain.api_key_env == "MY_KEY"
    assert plain.cadence.young_s == 5
    assert "[cadence]" in plain.source["cadence.young_s"]
    assert plain.keymap == {"batches.refresh": "f5,r"}

    prod = load_settings(environ={"BATCHTOP_PROFILE": "prod"})
    assert prod.profile == "prod" and prod.read_only is True
    assert prod.base_url == "http://127.0.0.1:9"
    assert prod.cadence.old_s == 600
    assert "[profiles.prod]" in prod.source["base_url"]

    env = load_settings(environ={"BATCHTOP_PROFILE": "prod", "ANTHROPIC_BASE_URL": "http://env"})
    assert env.base_url == "http://env"
    assert env.source["base_url"] == "environment ANTHROPIC_BASE_URL"

    args = argparse.Namespace(profile="prod", base_url="http://flag", read_only=False,
                              no_mouse=True)
    flag = load_settings(args, environ={"ANTHROPIC_BASE_URL": "http://env"})
    assert flag.base_url == "http://flag" and flag.source["base_url"] == "--base-url"
    assert flag.no_mouse is True


def test_unknown_profile_is_a_clear_error() -> None:
    write_config(CONFIG)
    with pytest.raises(ConfigError, match="no profile named 'staging'"):
        load_settings(environ={"BATCHTOP_PROFILE": "staging"})


def test_wrong_type_names_the_key() -> None:
    write_config('[defaults]\nbell = "loud"\nsla_seconds = "long"\n')
    with pytest.raises(ConfigError, match="sla_seconds"):
        load_settings(environ={})


def test_broken_toml_names_the_file() -> None:
    path = write_config("[defaults\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_settings(environ={})


def test_plain_key_in_readable_file_warns() -> None:
    path = write_config('[profiles.default]\napi_key = "sk-plain"\n')
    path.chmod(0o644)
    settings = load_settings(environ={})
    assert any("readable by others" in w for w in settings.warnings)
    assert all("sk-plain" not in value for _, value, _ in settings.effective())


def test_init_creates_private_commented_file() -> None:
    path = ensure_config_file()
    assert path.read_text().startswith("# batchtop configuration")
    assert os.stat(path).st_mode & 0o777 == 0o600
    load_settings(environ={})  # the template itself parses


def test_config_show_never_prints_the_key(capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    write_config('[profiles.default]\napi_key = "sk-sentinel-123"\n')
    assert main(["config", "--show"]) == 0
    out = capsys.readouterr().out
    assert "sk-sentinel-123" not in out
    assert "api_key" in out and "(set)" in out


def test_config_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    write_config("[defaults\n")
    assert main(["config"]) == 2
    assert "config.toml" in capsys.readouterr().err


def test_config_show_flags_unknown_keymap_ids(capsys: pytest.CaptureFixture[str]) -> None:
    write_config('[keymap]\n"batches.refresh" = "f5"\n"batches.refrsh" = "x"\n')
    assert main(["config", "--show"]) == 0
    lines = capsys.readouterr().out.splitlines()
    typo = next(line for line in lines if "keymap.batches.refrsh" in line)
    good = next(line for line in lines if "keymap.batches.refresh" in line)
    assert "UNKNOWN binding id" in typo and "UNKNOWN" not in good


def test_key_source_names_where_the_key_is_never_the_key() -> None:
    assert Settings(api_key_env="MY_KEY").key_source() == "$MY_KEY"
    assert Settings(api_key_command="pass show x").key_source() == "key command"
    assert "sk-" not in Settings(api_key="sk-secret").key_source()


def test_switching_profile_keeps_read_only_and_drops_base_url() -> None:
    write_config(CONFIG)
    args = argparse.Namespace(profile="prod", base_url="http://flag", read_only=True,
                              no_mouse=False)
    switched = load_settings(profile_args(args, "default"), environ={})
    assert switched.profile == "default" and switched.source["profile"] == "--profile"
    assert switched.base_url is None and switched.read_only is True
    summaries = {s.name: s for s in profile_summaries(None, ("default", "prod", "gone"),
                                                      environ={})}
    assert summaries["prod"].read_only and summaries["prod"].base_url == "http://127.0.0.1:9"
    assert summaries["prod"].key_source == "key command"
    assert summaries["gone"].error is not None and "gone" in summaries["gone"].error
