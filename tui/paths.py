"""Where batchtop keeps its files: BATCHTOP_HOME when set, platformdirs locations otherwise."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "batchtop"
HOME_ENV = "BATCHTOP_HOME"


@dataclass(frozen=True, slots=True)
class Locations:
    """The four directories batchtop writes to."""

    config: Path
    data: Path
    cache: Path
    audit: Path

    @property
    def config_file(self) -> Path:
        return self.config / "config.toml"

    def as_dict(self) -> dict[str, str]:
        return {
            "config": str(self.config),
            "config_file": str(self.config_file),
            "data": str(self.data),
            "cache": str(self.cache),
            "audit": str(self.audit),
        }


def locations(env: os._Environ[str] | dict[str, str] | None = None) -> Locations:
    """Resolve the locations; nothing is created here."""
    environ = os.environ if env is None else env
    home = environ.get(HOME_ENV)
    if home:
        root = Path(home).expanduser()
        return Locations(
            config=root / "config",
            data=root / "data",
            cache=root / "cache",
            audit=root / "data" / "audit",
        )
    data = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    return Locations(
        config=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        data=data,
        cache=Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
        audit=data / "audit",
    )


def ensure_private_dir(path: Path) -> Path:
    """Create `path` with mode 0700, missing parents too; tighten it if it already exists.

    Each missing level is created 0700 here (``mkdir -p`` would give parents the umask's
    default, e.g. 0755 or 0777). Parents that already existed are not batchtop's: untouched.
    """
    missing = [level for level in (path, *path.parents) if not level.exists()]
    for level in reversed(missing):
        level.mkdir(mode=0o700, exist_ok=True)
        _set_mode(level, exact=True)  # the umask may have taken bits 0700 needs
    if not missing:
        _set_mode(path, exact=False)
    return path


def _set_mode(directory: Path, *, exact: bool) -> None:
    try:
        mode = directory.stat().st_mode & 0o777
        if (mode != 0o700) if exact else bool(mode & 0o077):
            directory.chmod(0o700)
    except OSError:
        pass
