"""API keys: from the environment or ``.env`` (python-dotenv), normalised, required per source, never shown.

``config.yaml`` holds behaviour; keys come only from here. Every key loaded is registered with the redactor
(:data:`pipeline.redaction.redact`) in its raw and decoded forms before it can reach a message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote

from dotenv import dotenv_values

from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.redaction import redact

TmdbAuth = Literal["bearer", "api_key"]
_JWT = re.compile(r"^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$")


@dataclass(frozen=True, slots=True, repr=False)
class Secrets:
    """API keys. ``repr`` never shows them."""

    tmdb_api_key: str | None = None
    data_go_api_key: str | None = None

    def __repr__(self) -> str:
        def state(value: str | None) -> str:
            return "set" if value else "unset"

        return f"Secrets(tmdb_api_key={state(self.tmdb_api_key)}, data_go_api_key={state(self.data_go_api_key)})"

    @property
    def tmdb_auth(self) -> TmdbAuth:
        """A v4 read-access token (a JWT) goes in the Authorization header; a v3 key in ``api_key=``."""
        return "bearer" if self.tmdb_api_key and _JWT.match(self.tmdb_api_key) else "api_key"


def normalize_data_go_key(key: str) -> str:
    """Accept the portal's Encoding key (``%2B…``) or Decoding key (``+…``); return the decoded form.

    The decoded key is then sent through the HTTP library's query parameters, which encodes it exactly once.
    """
    key = key.strip()
    while "%" in key:
        decoded = unquote(key)
        if decoded == key:
            break
        key = decoded
    return key


def load_secrets(env: Mapping[str, str] | None = None, dotenv_path: Path | None = None) -> Secrets:
    """Keys from the real environment, else from ``.env`` (the environment wins)."""
    environ: Mapping[str, str] = os.environ if env is None else env
    dotenv: dict[str, str | None] = {}
    path = dotenv_path if dotenv_path is not None else Path(".env")
    if path.is_file():
        dotenv = dict(dotenv_values(path))

    def get(name: str) -> str | None:
        value = environ.get(name) or dotenv.get(name) or None
        return value.strip() or None if value else None

    tmdb = get("TMDB_API_KEY")
    data_go = get("DATA_GO_API_KEY")
    if data_go:
        redact.add(data_go)
        data_go = normalize_data_go_key(data_go)
    redact.add(tmdb)
    redact.add(data_go)
    return Secrets(tmdb_api_key=tmdb, data_go_api_key=data_go)


def require_secrets(settings: Settings, secrets: Secrets, sources: tuple[str, ...] = ("tmdb", "airkorea")) -> None:
    """Fail early, and clearly, when an enabled source (of ``sources``: those the command uses) has no key."""
    hint = "put it in .env (see .env.example) or the environment, disable the source in config.yaml, or add --simulate"
    if "tmdb" in sources and settings.sources.tmdb.enabled and not secrets.tmdb_api_key:
        raise ConfigError(f"TMDB_API_KEY is not set but sources.tmdb is enabled: {hint}")
    if "airkorea" in sources and settings.sources.airkorea.enabled and not secrets.data_go_api_key:
        raise ConfigError(f"DATA_GO_API_KEY is not set but sources.airkorea is enabled: {hint}")
