"""Bad configuration and bad arguments: one line naming the problem, exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli import main

BAD_CONFIGS = {
    "unknown key": ("sources:\n  tmdb:\n    max_page: 3\n", "sources.tmdb.max_page: unknown key"),
    "wrong type": ("sources:\n  airkorea:\n    concurrency: lots\n", "sources.airkorea.concurrency: Input should be a valid integer"),
    "bad cron": ("schedule:\n  jobs:\n    tmdb: {cron: '0 25 * * *'}\n", "schedule.jobs.tmdb: invalid cron expression '0 25 * * *'"),
    "cron with 6 fields": ("schedule:\n  jobs:\n    tmdb: {cron: '0 0 1 * * *'}\n", "a cron expression has 5 fields"),
    "bad URL": ("sources:\n  airkorea:\n    base_url: apis.data.go.kr\n", "sources.airkorea.base_url: must be an http(s) URL"),
    "unknown sido": ("sources:\n  airkorea:\n    sidos: [서울, 평양]\n", "sources.airkorea.sidos.1"),
    "negative concurrency": ("sources:\n  tmdb:\n    concurrency: -1\n", "sources.tmdb.concurrency: Input should be greater than or equal to 1"),
    "negative heal budget": ("sources:\n  airkorea:\n    heal_budget: -1\n", "sources.airkorea.heal_budget: Input should be greater than or equal to 0"),
    "late poll past the hour": ("sources:\n  airkorea:\n    late_poll: 2h\n", "sources.airkorea.late_poll: Input should be less than or equal to 3600"),
    "malformed YAML": ("sources:\n  tmdb: {enabled: true\n", "malformed YAML at line"),
    "YAML alias trap": ("schedule:\n  jobs:\n    tmdb: {cron: */5 * * * *}\n", "malformed YAML"),
    "unknown time zone": ("schedule:\n  timezone: KST\n", "schedule.timezone: unknown time zone 'KST'"),
    "bad duration": ("schedule:\n  shutdown_grace: soon\n", "schedule.shutdown_grace: Value error, not a duration"),
    "unknown job": ("schedule:\n  jobs:\n    weather: {interval: 60}\n", "schedule.jobs.weather"),
    "both cron and interval": ("schedule:\n  jobs:\n    tmdb: {cron: '0 * * * *', interval: 60}\n", "exactly one of cron or interval"),
    "unsupported database": ("database:\n  url: mysql+aiomysql://localhost/x\n", "database.url: must start with one of"),
    "unwritable database path": ("database:\n  url: sqlite+aiosqlite:////proc/pipeline/p.db\n", "database.url: cannot create directory /proc/pipeline"),
    "rate above TMDB's limit": ("sources:\n  tmdb:\n    rate_limit: 100\n", "sources.tmdb.rate_limit: Input should be less than or equal to 40"),
}  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_bad_config(tmp_path: Path, text: str, message: str, capfd: pytest.CaptureFixture[str],
                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(text, encoding="utf-8")
    code = main(["run", "--once", "--simulate"])
    out, err = capfd.readouterr()
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message.replace("Value error, ", "") in err, err
    assert "Traceback" not in out + err


def test_missing_key_for_enabled_source(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TMDB_API_KEY", raising=False)
    monkeypatch.setenv("DATA_GO_API_KEY", "some-key")
    assert main(["run", "--once"]) == 2
    err = capfd.readouterr().err
    assert err.startswith("error: TMDB_API_KEY is not set but sources.tmdb is enabled") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--once", "--job", "weather"], "Invalid value for '--job'"),
        (["run", "--job", "tmdb"], "--job only applies with --once"),
        (["--log-format", "xml", "status"], "Invalid value for '--log-format'"),
        (["--config", "/nonexistent/config.yaml", "status"], "config file not found: /nonexistent/config.yaml"),
        (["simulate", "--port", "-1"], "Invalid value for '--port'"),
        (["simulate", "--clock", "2026-11-28T10:00:00"], "give a time zone"),
        (["status", "--bogus"], "No such option '--bogus'"),
        (["status"], "does not exist yet; run 'pipeline migrate'"),
    ],
)
def test_bad_arguments(tmp_path: Path, args: list[str], message: str, capfd: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PIPELINE_CONFIG", raising=False)
    assert main(args) == 2
    err = capfd.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
