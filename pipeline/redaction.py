"""Remove secrets from text by value, in every form a URL library may have written them.

A key can reach a message raw (``abc+/def==``), percent-encoded once (``abc%2B%2Fdef%3D%3D``, either hex
case, with or without ``/`` kept), encoded twice (``%252B``), or with ``+`` decoded to a space. All of them
are replaced by ``***``. As a second line of defence, any ``serviceKey=``/``api_key=``/``Bearer`` value is
masked whatever it holds.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote, quote_plus

MASK = "***"
#: query parameters that carry a key: never written anywhere (logs, errors, the archive)
SECRET_PARAMS = frozenset({"serviceKey", "ServiceKey", "api_key"})
_PARAM = re.compile(r"(?i)\b(servicekey|api_key|apikey|access_token)=[^&\s'\"<>]+")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+")


def secret_forms(secret: str) -> set[str]:
    """Every spelling of ``secret`` worth looking for (only forms of at least 4 characters)."""
    forms = {secret, secret.replace("+", " ")}
    for encoded in (quote(secret, safe=""), quote(secret, safe="/"), quote_plus(secret)):
        forms.add(encoded)
        forms.add(quote(encoded, safe=""))  # encoded twice
        forms.add(quote(encoded, safe="/"))
    return {f for f in forms if len(f) >= 4}


class Redactor:
    """Holds the secrets of this process and scrubs them out of text."""

    def __init__(self) -> None:
        self._pattern: re.Pattern[str] | None = None
        self._secrets: set[str] = set()

    def add(self, secret: str | None) -> None:
        if not secret or len(secret) < 4 or secret in self._secrets:
            return
        self._secrets.add(secret)
        forms: set[str] = set()
        for s in self._secrets:
            forms |= secret_forms(s)
        # longest first so that an encoded form is not half-replaced by a shorter one
        alternatives = sorted((re.escape(f) for f in forms), key=len, reverse=True)
        self._pattern = re.compile("|".join(alternatives), re.IGNORECASE)

    def clear(self) -> None:
        self._secrets.clear()
        self._pattern = None

    def __call__(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        text = _PARAM.sub(rf"\1={MASK}", text)
        return _BEARER.sub(rf"\1{MASK}", text)


#: The process-wide redactor: settings register the keys they load; logging and errors use it.
redact = Redactor()


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs secrets from the message, its arguments and the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str, limit: int = 200) -> str:
    """API text made safe for one line of a terminal or log: control characters (ANSI escapes, newlines,
    bidi overrides) become spaces, runs of white space one space, and the text is cut at ``limit``."""
    flat = " ".join(_UNPRINTABLE.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
