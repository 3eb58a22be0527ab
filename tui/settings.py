"""One settings object: built-ins < config file < profile < environment < flags, with provenance."""

from __future__ import annotations

import argparse
import os
import stat
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tui.core.cadence import Cadence
from tui.paths import Locations, ensure_private_dir, locations

DEFAULT_PROFILE = "default"

CONFIG_TEMPLATE = """\
# batchtop configuration.
# Precedence: command-line flag > environment > profile > [defaults] > built-in.
# `batchtop config --show` prints the effective values and where each came from.

[defaults]
profile = "default"          # the profile used when --profile / BATCHTOP_PROFILE are not given
theme = "textual-dark"       # any Textual theme, or "batchtop-high-contrast" (ctrl+t picks)
bell = true                  # ring the terminal bell on alerts
# on_alert = "notify-send batchtop"   # a command that receives each alert as JSON on stdin
# error_rate_alert = 0.10             # alert when an ended batch's error rate is above this
# sla_seconds = 3600                  # alert when a batch runs longer than this
# max_per_batch = 10000               # split submits into batches of at most this many requests
# watch_profiles = ["prod", "staging"]  # watch several profiles side by side in the list

[cadence]                    # adaptive polling, seconds (measured from each batch's created_at)
# young_s = 10               # while younger than young_until_s
# young_until_s = 300
# middle_s = 60              # until middle_until_s
# middle_until_s = 3600
# old_s = 300
# discover_s = 30            # re-read the first list page to discover new batches
# ended_sweep_s = 600        # slow sweep that notices archived or deleted batches
# focused_s = 3              # the batch open on screen

[keymap]                     # binding id = "keys", e.g.
# "batches.refresh" = "r,f5"

[profiles.default]
api_key_env = "ANTHROPIC_API_KEY"       # read the key from this environment variable
# api_key_command = "pass show anthropic/prod"   # or run this command and use its output
# base_url = "https://api.anthropic.com"
# read_only = true

# [profiles.staging]                    # another workspace: `batchtop --profile staging`,
# api_key_env = "ANTHROPIC_API_KEY_STAGING"   # or P in the app to switch to it
# read_only = true

# [prices."claude-sonnet-4-5"]          # USD per million tokens, overriding the shipped table
# input = 3.0
# output = 15.0
"""

_TRUE = {"1", "true", "yes", "on"}


class ConfigError(Exception):
    """The config file cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting batchtop reads, resolved once."""

    profile: str = DEFAULT_PROFILE
    base_url: str | None = None
    api_key_env: str = "ANTHROPIC_API_KEY"
    api_key_command: str | None = None
    api_key: str | None = field(default=None, repr=False)
    read_only: bool = False
    cadence: Cadence = field(default_factory=Cadence)
    theme: str = "textual-dark"
    no_mouse: bool = False
    no_color: bool = False
    bell: bool = True
    on_alert: str | None = None
    error_rate_alert: float = 0.10
    sla_seconds: float = 3600.0
    max_per_batch: int = 10_000
    keymap: Mapping[str, str] = field(default_factory=dict)
    prices: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    profiles: tuple[str, ...] = (DEFAULT_PROFILE,)
    watch_profiles: tuple[str, ...] = ()  # several profiles watched side by side
    config_file: Path | None = None
    source: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def resolve_api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The API key from the profile's source; None when nothing is configured."""
        from tui.service.credentials import resolve_api_key

        if self.api_key:
            return self.api_key
        env = os.environ if environ is None else environ
        return resolve_api_key(env, key_env=self.api_key_env, key_command=self.api_key_command)

    def key_source(self) -> str:
        """Where the profile's key comes from, never the key: shown by the profile picker."""
        if self.api_key:
            return "key in the config file"
        if self.api_key_command:
            return "key command"
        return f"${self.api_key_env}"

    def effective(self, binding_ids: Collection[str] | None = None) -> list[tuple[str, str, str]]:
        """(name, value, source) rows for `batchtop config --show`; never the key itself.

        `[keymap]` entries naming no binding are flagged; the ids are the UI's own
        (`binding_ids`, else read from the UI when the keymap is not empty).
        """
        rows: list[tuple[str, str, str]] = []
        for item in fields(self):
            name = item.name
            if name in {"source", "warnings", "profiles", "keymap", "prices", "cadence"}:
                continue
            value = getattr(self, name)
            shown = ("(set)" if value else "(not set)") if name == "api_key" else str(value)
            rows.append((name, shown, self.source.get(name, "built-in")))
        for item in fields(self.cadence):
            rows.append((f"cadence.{item.name}", str(getattr(self.cadence, item.name)),
                         self.source.get(f"cadence.{item.name}", "built-in")))
        if self.keymap and binding_ids is None:
            from tui.ui.commands import binding_ids as ui_binding_ids

            binding_ids = ui_binding_ids()
        for binding, keys in sorted(self.keymap.items()):
            known = binding_ids is None or binding in binding_ids
            rows.append((f"keymap.{binding}", keys,
                         "config file" if known else "config file: UNKNOWN binding id, ignored"))
        return rows


@dataclass(frozen=True, slots=True)
class ProfileSummary:
    """One profile as the picker lists it: never its key, only where the key comes from."""

    name: str
    base_url: str | None = None
    read_only: bool = False
    key_source: str = ""
    error: str | None = None  # the profile cannot be loaded (a wrong type in its table)


def profile_args(args: argparse.Namespace | None, name: str) -> argparse.Namespace:
    """The command line as if it had said `--profile NAME`. `--base-url` belonged to the
    profile the app started with and is dropped; `--read-only` stays on for every profile."""
    values = dict(vars(args)) if args is not None else {}
    values["profile"] = name
    values["base_url"] = None
    return argparse.Namespace(**values)


def profile_summaries(args: argparse.Namespace | None, names: Collection[str],
                      environ: Mapping[str, str] | None = None,
                      where: Locations | None = None) -> list[ProfileSummary]:
    """Each profile as it would load now (its key is not resolved: no key command runs)."""
    out: list[ProfileSummary] = []
    for name in names:
        try:
            settings = load_settings(profile_args(args, name), environ, where)
        except ConfigError as exc:
            out.append(ProfileSummary(name, error=str(exc)))
            continue
        out.append(ProfileSummary(name, settings.base_url, settings.read_only,
                                  settings.key_source()))
    return out


def config_path(where: Locations | None = None) -> Path:
    return (where or locations()).config_file


def ensure_config_file(where: Locations | None = None) -> Path:
    """Create the commented config file if it does not exist yet (0600 in a 0700 directory)."""
    path = config_path(where)
    if not path.exists():
        ensure_private_dir(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(CONFIG_TEMPLATE)
    return path


def read_config(path: Path) -> dict[str, Any]:
    """Parse the TOML file; a missing file is an empty config."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _coerce(name: str, value: Any, current: Any, origin: str) -> Any:
    """Check a config value against the type of the setting it replaces."""
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return value.strip().lower() in _TRUE
    elif isinstance(current, int | float) and not isinstance(current, bool):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return type(current)(value)
    elif (current is None or isinstance(current, str)) and isinstance(value, str):
        return value
    raise ConfigError(f"{origin}: `{name}` has the wrong type ({type(value).__name__})")


_SCALAR_KEYS = (
    "base_url", "api_key_env", "api_key_command", "api_key", "read_only", "theme", "bell",
    "on_alert", "error_rate_alert", "sla_seconds", "max_per_batch",
)


def _apply(values: dict[str, Any], table: Mapping[str, Any], origin: str,
           source: dict[str, str]) -> None:
    for key in _SCALAR_KEYS:
        if key in table:
            current = values.get(key, getattr(Settings(), key))
            values[key] = _coerce(key, table[key], current, origin)
            source[key] = origin


def _cadence(base: Cadence, *tables: tuple[Mapping[str, Any], str],
             source: dict[str, str]) -> Cadence:
    changes: dict[str, float] = {}
    known = {item.name for item in fields(base)}
    for table, origin in tables:
        for key, value in table.items():
            if key not in known:
                raise ConfigError(f"{origin}: unknown cadence setting `{key}`")
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{origin}: cadence `{key}` must be a positive number")
            changes[key] = float(value)
            source[f"cadence.{key}"] = origin
    return replace(base, **changes) if changes else base


def _file_warnings(path: Path, data: Mapping[str, Any]) -> list[str]:
    """Warn about plain keys in a file others can read."""
    notes: list[str] = []
    profiles = data.get("profiles", {})
    tables = [data.get("defaults", {}), *(profiles.values() if isinstance(profiles, Mapping)
                                          else ())]
    has_key = any(isinstance(table, Mapping) and table.get("api_key") for table in tables)
    if has_key:
        notes.append(f"{path}: a plain api_key is stored; prefer api_key_env or api_key_command")
        try:
            mode = path.stat().st_mode
        except OSError:
            mode = 0
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            notes.append(f"{path}: contains an API key but is readable by others (chmod 600 it)")
    return notes


def _watch_profiles(defaults: Mapping[str, Any], args: argparse.Namespace | None,
                    known: Collection[str], origin: str,
                    source: dict[str, str]) -> tuple[str, ...]:
    """The profiles watched side by side: `--watch-profiles a,b` over `[defaults]`."""
    flag = getattr(args, "watch_profiles", None) if args is not None else None
    if flag:
        names = [part.strip() for part in str(flag).split(",") if part.strip()]
        origin = "--watch-profiles"
    elif "watch_profiles" in defaults:
        raw = defaults["watch_profiles"]
        if not isinstance(raw, list) or not all(isinstance(name, str) for name in raw):
            raise ConfigError(f"{origin}: `watch_profiles` must be a list of profile names")
        names = [name.strip() for name in raw if name.strip()]
    else:
        return ()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(f"{origin}: `watch_profiles` names unknown profiles: "
                          f"{', '.join(unknown)} (known: {', '.join(sorted(known))})")
    source["watch_profiles"] = origin
    return tuple(dict.fromkeys(names))


def load_settings(args: argparse.Namespace | None = None,
                  environ: Mapping[str, str] | None = None,
                  where: Locations | None = None) -> Settings:
    """Resolve every setting with its source; raises ConfigError naming the file and the key."""
    env = os.environ if environ is None else environ
    path = config_path(where)
    data = read_config(path)
    origin_file = f"config file {path}"
    values: dict[str, Any] = {}
    source: dict[str, str] = {}

    defaults = data.get("defaults", {})
    if not isinstance(defaults, Mapping):
        raise ConfigError(f"{path}: [defaults] must be a table")
    _apply(values, defaults, f"{origin_file} [defaults]", source)

    profiles = data.get("profiles", {})
    if not isinstance(profiles, Mapping):
        raise ConfigError(f"{path}: [profiles] must be a table of tables")
    arg_profile = getattr(args, "profile", None) if args is not None else None
    if arg_profile:
        profile, profile_origin = str(arg_profile), "--profile"
    elif env.get("BATCHTOP_PROFILE"):
        profile, profile_origin = env["BATCHTOP_PROFILE"], "environment BATCHTOP_PROFILE"
    elif isinstance(defaults.get("profile"), str):
        profile, profile_origin = defaults["profile"], f"{origin_file} [defaults]"
    else:
        profile, profile_origin = DEFAULT_PROFILE, "built-in"
    if profile not in profiles and profile != DEFAULT_PROFILE:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"{path}: no profile named {profile!r} (known: {known})")
    source["profile"] = profile_origin
    profile_table = profiles.get(profile, {})
    if not isinstance(profile_table, Mapping):
        raise ConfigError(f"{path}: [profiles.{profile}] must be a table")
    _apply(values, profile_table, f"{origin_file} [profiles.{profile}]", source)

    if env.get("ANTHROPIC_BASE_URL"):
        values["base_url"] = env["ANTHROPIC_BASE_URL"]
        source["base_url"] = "environment ANTHROPIC_BASE_URL"
    if env.get("BATCHTOP_READ_ONLY"):
        values["read_only"] = env["BATCHTOP_READ_ONLY"].strip().lower() in _TRUE
        source["read_only"] = "environment BATCHTOP_READ_ONLY"
    if env.get("BATCHTOP_THEME"):
        values["theme"] = env["BATCHTOP_THEME"]
        source["theme"] = "environment BATCHTOP_THEME"
    no_color = bool(env.get("NO_COLOR"))
    if no_color:
        source["no_color"] = "environment NO_COLOR"

    if args is not None:
        if getattr(args, "base_url", None):
            values["base_url"] = args.base_url
            source["base_url"] = "--base-url"
        if getattr(args, "read_only", False):
            values["read_only"] = True
            source["read_only"] = "--read-only"
        if getattr(args, "no_mouse", False):
            values["no_mouse"] = True
            source["no_mouse"] = "--no-mouse"

    cadence_tables: list[tuple[Mapping[str, Any], str]] = []
    for table, origin in ((data.get("cadence", {}), f"{origin_file} [cadence]"),
                          (profile_table.get("cadence", {}),
                           f"{origin_file} [profiles.{profile}.cadence]")):
        if not isinstance(table, Mapping):
            raise ConfigError(f"{origin}: must be a table")
        cadence_tables.append((table, origin))
    cadence = _cadence(Cadence(), *cadence_tables, source=source)

    keymap_raw = data.get("keymap", {})
    if not isinstance(keymap_raw, Mapping) or not all(
        isinstance(v, str) for v in keymap_raw.values()
    ):
        raise ConfigError(f"{path}: [keymap] values must be strings like \"r,f5\"")
    prices: dict[str, Mapping[str, Any]] = {}
    for table in (data.get("prices", {}), profile_table.get("prices", {})):
        if isinstance(table, Mapping):
            prices.update({str(k): v for k, v in table.items() if isinstance(v, Mapping)})

    known_profiles = tuple(sorted(set(profiles) | {DEFAULT_PROFILE}))
    watch = _watch_profiles(defaults, args, known_profiles, f"{origin_file} [defaults]", source)
    return Settings(
        profile=profile,
        cadence=cadence,
        no_color=no_color,
        keymap=dict(keymap_raw),
        prices=prices,
        profiles=known_profiles,
        watch_profiles=watch,
        config_file=path,
        source=source,
        warnings=tuple(_file_warnings(path, data)),
        **values,
    )
