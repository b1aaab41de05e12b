from __future__ import annotations

import logging
from urllib.parse import quote

import pytest

from pipeline.extract.http import describe
from pipeline.redaction import MASK, RedactingFilter, redact, secret_forms

KEY = "Ab+cd/EF0123456789xyz=="


def test_every_encoding_of_a_key_is_removed() -> None:
    redact.add(KEY)
    texts = [
        KEY,
        quote(KEY, safe=""),
        quote(KEY, safe="").lower(),
        quote(quote(KEY, safe=""), safe=""),
        KEY.replace("+", " "),
        f"url='http://h/p?serviceKey={quote(KEY, safe='')}&pageNo=1'",
    ]
    for text in texts:
        cleaned = redact(f"before {text} after")
        for form in secret_forms(KEY):
            assert form not in cleaned
        assert MASK in cleaned


def test_parameters_are_masked_even_for_unknown_values() -> None:
    assert redact("GET /x?serviceKey=zzz&api_key=yyy&page=1") == f"GET /x?serviceKey={MASK}&api_key={MASK}&page=1"
    assert redact("Authorization: Bearer eyJabc.def.ghi") == f"Authorization: Bearer {MASK}"


def test_describe_drops_secret_parameters() -> None:
    text = describe("http://h/3/movie/1", {"api_key": "secret123", "language": "ko-KR"})
    assert text == "GET http://h/3/movie/1?language=ko-KR"


def test_logging_filter_scrubs_message_args_and_traceback(caplog: pytest.LogCaptureFixture) -> None:
    redact.add(KEY)
    logger = logging.getLogger("test.redaction")
    logger.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="test.redaction"):
            logger.info("calling %s", f"http://h/?serviceKey={quote(KEY, safe='')}")
            try:
                raise ValueError(f"boom {KEY}")
            except ValueError:
                logger.exception("failed")
    finally:
        logger.filters.clear()
    text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert KEY not in text and quote(KEY, safe="") not in text and "boom ***" in text
