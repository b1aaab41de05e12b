from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import SIDOS, Settings, load_settings, parse_settings
from pipeline.errors import ConfigError
from pipeline.keys import Secrets, load_secrets, normalize_data_go_key, require_secrets

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_config_is_valid_and_matches_the_documented_keys() -> None:
    settings = load_settings(ROOT / "config.yaml", env={})
    assert settings.database.url == "sqlite+aiosqlite:///data/pipeline.db"
    assert settings.sources.tmdb.language == "ko-KR" and settings.sources.tmdb.region == "KR"
    assert settings.sources.airkorea.sidos == ("전국",)  # one call for the country; SIDOS are the fallback
    assert len(SIDOS) == 17
    assert settings.sources.airkorea.stations == ()  # no watch-list: self-healing spends the series calls
    assert settings.sources.airkorea.heal_budget == 24 and settings.sources.airkorea.late_poll == 600
    assert settings == Settings()  # the shipped file writes the defaults out


def test_config_path_precedence(tmp_path: Path) -> None:
    explicit = tmp_path / "a.yaml"
    explicit.write_text("sources: {tmdb: {max_pages: 3}}\n")
    from_env = tmp_path / "b.yaml"
    from_env.write_text("sources: {tmdb: {max_pages: 4}}\n")
    assert load_settings(explicit, env={"PIPELINE_CONFIG": str(from_env)}).sources.tmdb.max_pages == 3
    assert load_settings(None, env={"PIPELINE_CONFIG": str(from_env)}).sources.tmdb.max_pages == 4
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "missing.yaml", env={})


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("sources:\n  tmdb:\n    colour: red\n", "sources.tmdb.colour: unknown key"),
        ("sources:\n  tmdb:\n    max_pages: many\n", "sources.tmdb.max_pages: Input should be a valid integer"),
        ("sources:\n  tmdb:\n    base_url: not-a-url\n", "sources.tmdb.base_url: must be an http(s) URL"),
        ("sources:\n  airkorea:\n    sidos: [서울, 화성]\n", "sources.airkorea.sidos.1: Input should be"),
        ("sources:\n  airkorea:\n    concurrency: -2\n", "sources.airkorea.concurrency: Input should be greater"),
        ("sources:\n  airkorea:\n    data_term: WEEKLY\n", "sources.airkorea.data_term"),
        ("sources:\n  tmdb:\n    region: kr\n", "sources.tmdb.region: String should match pattern"),
        ("database:\n  url: mysql://x\n", "database.url: must start with one of"),
        ("sources:\n  tmdb: {enabled: false}\n  airkorea: {enabled: false}\n", "every source is disabled"),
        ("sources: [1, 2\n", "malformed YAML at line"),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("sources:\n  airkorea:\n    sidos: [전국, 서울]\n", "list it alone"),
        ("sources:\n  airkorea:\n    stations: ['  ']\n", "a station name is empty"),
        ("sources:\n  tmdb:\n    base_url: 'https://api.themoviedb.org/3?api_key=x'\n", "must not carry a query"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    text = str(caught.value)
    assert message in text and "\n" not in text


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("", encoding="utf-8")
    assert load_settings(path, env={}) == Settings()


@pytest.mark.parametrize(
    "key", ["abc+/def==", "abc%2B%2Fdef%3D%3D", "abc%2b%2fdef%3d%3d", "abc%252B%252Fdef%253D%253D", " abc+/def== "]
)
def test_data_go_key_accepts_encoding_or_decoding_form(key: str) -> None:
    assert normalize_data_go_key(key) == "abc+/def=="


def test_secrets_come_from_env_then_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("TMDB_API_KEY=from-dotenv-0123456789\nDATA_GO_API_KEY=abc%2B%2Fdef%3D%3D\n")
    secrets = load_secrets(env={"TMDB_API_KEY": "eyJhbGc.eyJzdWIi.c2ln"}, dotenv_path=dotenv)
    assert secrets.tmdb_api_key == "eyJhbGc.eyJzdWIi.c2ln" and secrets.tmdb_auth == "bearer"
    assert secrets.data_go_api_key == "abc+/def=="
    assert "abc" not in repr(secrets) and "eyJ" not in repr(secrets)
    assert load_secrets(env={}, dotenv_path=dotenv).tmdb_auth == "api_key"


def test_missing_key_for_enabled_source_says_how_to_fix() -> None:
    with pytest.raises(ConfigError, match=r"TMDB_API_KEY is not set.*\.env.*--simulate"):
        require_secrets(Settings(), Secrets(data_go_api_key="k"))
    with pytest.raises(ConfigError, match="DATA_GO_API_KEY is not set"):
        require_secrets(Settings(), Secrets(tmdb_api_key="k"))
    only_tmdb = parse_settings({"sources": {"airkorea": {"enabled": False}}})
    require_secrets(only_tmdb, Secrets(tmdb_api_key="k"))
