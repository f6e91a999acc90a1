"""Profiles: which ingest to talk to and with which API key, kept in the user's config directory.

`hookyard login` writes `config.toml` in the platform's config directory
(`$XDG_CONFIG_HOME/hookyard/`, else `~/.config/hookyard/` on Linux), readable
by its owner only (0600), since it holds API keys. A profile is chosen with
`--profile NAME` or `HOOKYARD_PROFILE`, else `default`; flags and the
`HOOKYARD_URL` / `HOOKYARD_API_KEY` variables still win over it.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

DEFAULT = "default"


@dataclass(frozen=True)
class Profile:
    url: str
    api_key: str


def config_path() -> Path:
    return Path(platformdirs.user_config_dir("hookyard", appauthor=False)) / "config.toml"


def active_name() -> str:
    return os.environ.get("HOOKYARD_PROFILE") or DEFAULT


def _read() -> dict[str, dict[str, str]]:
    path = config_path()
    if not path.exists():
        return {}
    try:
        profiles = tomllib.loads(path.read_text()).get("profiles", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        from hookyard_cli.api import CliError  # here: api.py reads the profiles, so it imports this module

        raise CliError(f"{path} is not a valid profile file ({exc}): fix it, or remove it and log in again") from None
    if not isinstance(profiles, dict):
        return {}
    return {name: fields for name, fields in profiles.items() if isinstance(fields, dict)}


def load(name: str | None = None) -> Profile | None:
    fields = _read().get(name or active_name())
    if not fields or not isinstance(fields.get("url"), str) or not isinstance(fields.get("api_key"), str):
        return None
    return Profile(fields["url"], fields["api_key"])


def save(name: str, profile: Profile) -> Path:
    """Add or replace one profile, keeping the others; the file is created 0600 and replaced whole."""
    profiles = {**_read(), name: asdict(profile)}
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(_toml(profiles))
    os.chmod(temporary, 0o600)  # os.open's mode is only for a new file
    os.replace(temporary, path)
    return path


def _toml(profiles: dict[str, dict[str, str]]) -> str:
    # JSON's string escapes are TOML's basic strings: no TOML writer is needed for strings only.
    tables = (
        f"[profiles.{json.dumps(name, ensure_ascii=False)}]\n"
        + "".join(f"{key} = {json.dumps(value, ensure_ascii=False)}\n" for key, value in fields.items())
        for name, fields in sorted(profiles.items())
    )
    return "\n".join(tables)
