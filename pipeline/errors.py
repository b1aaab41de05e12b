"""The pipeline's exception tree. Only ``cli.py`` turns these into messages and exit codes.

::

    PipelineError
    ├── ConfigError              bad config.yaml / environment / CLI input; names the key path
    │   └── QueryError           ``pipeline sql``: an invalid or refused query (a usage error, exit 2)
    ├── SourceError(source, url) a request to an API failed; ``url`` is already redacted
    │   ├── TransientError       timeouts, resets, truncated bodies, 5xx, 429, data.go.kr 01/02/04/05/99:
    │   │                        retried with backoff, raised once the attempts are spent
    │   ├── AuthError            TMDB status_code 7 / 401, data.go.kr 20/21/30/31/32/33, HTTP 401/403:
    │   │                        stop that source for this run
    │   ├── QuotaError           data.go.kr code 22: pause that operation until KST midnight
    │   ├── NotFoundError        TMDB status_code 34 / 404: skip that item, record it
    │   └── BadRequestError      TMDB 22/27/400, data.go.kr 10/11/12, unparsable bodies: fail the job
    ├── RecordError              one record that cannot be normalised: goes to ``rejects``; the run continues
    ├── LoadError                the database refused a write or a migration
    └── DaemonError              the daemon's single-instance lock
        ├── AlreadyRunning       another daemon holds the lock of this database
        └── LockLost             the connection holding the PostgreSQL advisory lock closed: exit 1, restart

Every message that may reach a log line, the database or the terminal is built from redacted text: secrets
are removed by value (raw, percent-encoded and double-encoded forms) before the exception is created, and
wrapped third-party exceptions are re-raised ``from None``.
"""

from __future__ import annotations

from typing import Any, Literal

ErrorClass = Literal["transient", "auth", "quota", "not_found", "bad_request"]


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose."""


class ConfigError(PipelineError):
    """Invalid configuration; the message starts with the key path."""


class QueryError(ConfigError):
    """``pipeline sql``: the query is invalid or not allowed (a usage error: exit 2)."""


class SourceError(PipelineError):
    """A request to a source failed. ``url`` never contains a secret."""

    error_class: ErrorClass = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        source: str,
        url: str = "",
        operation: str = "",
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.source = source
        self.url = url
        self.operation = operation
        self.status = status
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        # keyword-only arguments: rebuild from the state, so errors cross process boundaries (backfill workers)
        return (_rebuild, (type(self), str(self), dict(self.__dict__)))


def _rebuild(cls: type[SourceError], message: str, state: dict[str, Any]) -> SourceError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class TransientError(SourceError):
    error_class: ErrorClass = "transient"


class AuthError(SourceError):
    error_class: ErrorClass = "auth"


class QuotaError(SourceError):
    error_class: ErrorClass = "quota"


class NotFoundError(SourceError):
    error_class: ErrorClass = "not_found"


class BadRequestError(SourceError):
    error_class: ErrorClass = "bad_request"


class RecordError(PipelineError):
    """One raw record that cannot be normalised."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LoadError(PipelineError):
    """The database refused a write or a migration."""


class DaemonError(PipelineError):
    """The daemon's single-instance lock (see :mod:`pipeline.lock`)."""


class AlreadyRunning(DaemonError):
    """Another daemon holds the lock of this database."""


class LockLost(DaemonError):
    """The connection holding the PostgreSQL advisory lock closed while the daemon ran."""
