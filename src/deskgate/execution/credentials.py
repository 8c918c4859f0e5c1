"""A venue's API key, secret and passphrase: from the environment or a 0600 secrets file.

Only the executor reads them (stack.service_env passes each venue's variables to it
alone). They are never logged, published or shown: `VenueCredentials` prints masked.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from deskgate.config import VenueSettings

#: Venues whose API needs a passphrase besides key and secret.
NEEDS_PASSPHRASE = frozenset({"okx"})


class CredentialsError(ValueError):
    """A venue's keys cannot be read; the message names the variable or file."""


@dataclass(frozen=True)
class VenueCredentials:
    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    passphrase: str = field(default="", repr=False)

    def __repr__(self) -> str:
        return f"VenueCredentials(api_key='{self.api_key[:4]}…', secret=<hidden>)"


def _from_file(venue: str, path: str) -> dict[str, str]:
    p = Path(path).expanduser()
    try:
        mode = p.stat().st_mode
    except OSError as exc:
        raise CredentialsError(f"venues.{venue}.secrets_file {p}: cannot read it ({exc.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(
            f"venues.{venue}.secrets_file {p} is readable by others (mode {stat.S_IMODE(mode):o}); run: chmod 600 {p}"
        )
    try:
        text = p.read_text()
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise CredentialsError(f"venues.{venue}.secrets_file {p} does not parse: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise CredentialsError(f"venues.{venue}.secrets_file {p} must hold a mapping of api_key, secret (and passphrase)")
    return {k: str(v) for k, v in data.items() if v is not None}


def read_credentials(venue: str, settings: VenueSettings, environ: dict[str, str] | None = None) -> VenueCredentials:
    """The venue's keys, or a CredentialsError naming exactly what is missing."""
    env = os.environ if environ is None else environ
    key_var, secret_var, pass_var = settings.env_names(venue)
    if settings.secrets_file:
        data = _from_file(venue, settings.secrets_file)
        where = f"venues.{venue}.secrets_file {settings.secrets_file}"
        got = {"api_key": data.get("api_key", ""), "secret": data.get("secret", ""), "passphrase": data.get("passphrase", "")}
        names = {"api_key": f"{where}: api_key", "secret": f"{where}: secret", "passphrase": f"{where}: passphrase"}
    else:
        got = {"api_key": env.get(key_var, ""), "secret": env.get(secret_var, ""), "passphrase": env.get(pass_var, "")}
        names = {"api_key": f"environment variable {key_var}", "secret": f"environment variable {secret_var}",
                 "passphrase": f"environment variable {pass_var}"}
    needed = ["api_key", "secret"] + (["passphrase"] if venue in NEEDS_PASSPHRASE else [])
    missing = [names[k] for k in needed if not got[k].strip()]
    if missing:
        raise CredentialsError(f"{venue}: missing key: {', '.join(missing)} is not set")
    return VenueCredentials(got["api_key"].strip(), got["secret"].strip(), got["passphrase"].strip())
