"""Where the API key and base URL come from: a profile's key command, the environment, flags."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping

API_KEY_ENV = "ANTHROPIC_API_KEY"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"
KEY_COMMAND_TIMEOUT_S = 10.0


class MissingApiKey(Exception):
    """No API key could be found; the message says where batchtop looked."""


class KeyCommandError(MissingApiKey):
    """The profile's key command failed. Its output is never included: it may be the key."""


def resolve_api_key(
    env: Mapping[str, str],
    key_env: str = API_KEY_ENV,
    key_command: str | None = None,
) -> str | None:
    """The API key, or None when none is configured.

    A profile's `key_command` wins over the environment: choosing a profile means choosing its
    workspace's key. Raises `KeyCommandError` when the command is set but fails.
    """
    if key_command:
        return run_key_command(key_command)
    value = env.get(key_env, "").strip()
    return value or None


def require_api_key(
    env: Mapping[str, str],
    key_env: str = API_KEY_ENV,
    key_command: str | None = None,
) -> str:
    """Like `resolve_api_key`, but a missing key raises `MissingApiKey` with what to do."""
    key = resolve_api_key(env, key_env, key_command)
    if key is None:
        raise MissingApiKey(
            f"no API key: set {key_env} or give the profile a key_command "
            "(for example `key_command = \"pass show anthropic\"`)"
        )
    return key


def run_key_command(command: str, timeout: float = KEY_COMMAND_TIMEOUT_S) -> str:
    """Run `command` (no shell) and return its stripped standard output."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise KeyCommandError(f"key command cannot be parsed: {exc}") from None
    if not argv:
        raise KeyCommandError("key command is empty")
    program = argv[0]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise KeyCommandError(f"key command not found: {program}") from None
    except PermissionError:
        raise KeyCommandError(f"key command is not executable: {program}") from None
    except subprocess.TimeoutExpired:
        raise KeyCommandError(f"key command {program} timed out after {timeout:g} s") from None
    except OSError as exc:
        raise KeyCommandError(f"key command {program} could not run: {exc.strerror}") from None
    if done.returncode != 0:
        raise KeyCommandError(f"key command {program} exited with status {done.returncode}")
    # Only the first line: `pass show` and friends print metadata after the secret.
    lines = done.stdout.strip().splitlines()
    key = lines[0].strip() if lines else ""
    if not key:
        raise KeyCommandError(f"key command {program} printed nothing")
    if any(ch.isspace() for ch in key):
        raise KeyCommandError(f"key command {program} printed more than a key on its first line")
    return key


def resolve_base_url(
    flag: str | None,
    env: Mapping[str, str],
    profile_base_url: str | None = None,
) -> str | None:
    """`--base-url`, then ANTHROPIC_BASE_URL, then the profile's; None means the SDK default."""
    for candidate in (flag, env.get(BASE_URL_ENV), profile_base_url):
        if candidate and candidate.strip():
            return candidate.strip()
    return None
