"""Response classification: HTTP status *and* body, for both sources."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import AuthError, BadRequestError, NotFoundError, QuotaError, SourceError, TransientError
from pipeline.extract import airkorea, tmdb
from tests.conftest import fixture_json, fixture_text

GATEWAY_XML = (
    "<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg><returnAuthMsg>{msg}</returnAuthMsg>"
    "<returnReasonCode>{code}</returnReasonCode></cmmMsgHeader></OpenAPI_ServiceResponse>"
)


def gateway_json(code: str, msg: str) -> str:
    return json.dumps({"OpenAPI_ServiceResponse": {"cmmMsgHeader": {"errMsg": "SERVICE ERROR", "returnAuthMsg": msg,
                                                                     "returnReasonCode": code}}})  # fmt: skip


def test_recorded_key_error_xml_in_a_200_is_a_clear_auth_error() -> None:
    with pytest.raises(AuthError) as caught:
        airkorea.classify(200, {}, fixture_text("airkorea/error_key_not_registered.xml"), "GET x")
    message = str(caught.value)
    assert "code 30 SERVICE_KEY_IS_NOT_REGISTERED_ERROR" in message and "DATA_GO_API_KEY" in message
    assert caught.value.code == "30" and caught.value.error_class == "auth"


@pytest.mark.parametrize(
    ("code", "error"),
    [
        *[(c, TransientError) for c in ("01", "02", "04", "05", "99")],
        *[(c, AuthError) for c in ("20", "21", "30", "31", "32", "33")],
        ("22", QuotaError),
        *[(c, BadRequestError) for c in ("10", "11", "12")],
    ],
)
@pytest.mark.parametrize("fmt", ["xml", "json", "envelope"])
def test_data_go_kr_codes_in_every_body_shape(code: str, error: type[SourceError], fmt: str) -> None:
    if fmt == "xml":
        body = GATEWAY_XML.format(code=code, msg="SOME_ERROR")
    elif fmt == "json":
        body = gateway_json(code, "SOME_ERROR")
    else:  # the normal envelope with a non-00 resultCode
        body = json.dumps({"response": {"header": {"resultCode": code, "resultMsg": "SOME_ERROR"}}})
    with pytest.raises(error) as caught:
        airkorea.classify(200, {}, body, "GET x")
    assert type(caught.value) is error and caught.value.code == code


def test_quota_error_says_when_it_resets() -> None:
    with pytest.raises(QuotaError, match="midnight KST"):
        airkorea.classify(200, {}, GATEWAY_XML.format(code="22", msg="LIMITED"), "GET x")


@pytest.mark.parametrize("status", [401, 403])
def test_plain_401_403_mentions_key_activation_delay(status: int) -> None:
    with pytest.raises(AuthError, match="1-2 hours"):
        airkorea.classify(status, {}, "Forbidden", "GET x")


@pytest.mark.parametrize(
    ("status", "headers", "body", "retry_after"),
    [
        (429, {"Retry-After": "3"}, "Too many", 3.0),
        (429, {}, "Too many", None),
        (503, {}, "<html><head><title>503 Service Temporarily Unavailable</title></head></html>", None),
        (500, {}, "oops", None),
        (200, {}, '{"response": {"header": {"resultCode": "00"}, "body": {"items": [{"a"', None),  # truncated
        (200, {}, "<html><body>maintenance</body></html>", None),
        (200, {}, "<response><header><resultCode>00</resultCode>", None),  # truncated XML
    ],
)
def test_airkorea_transient_cases(status: int, headers: dict[str, str], body: str, retry_after: float | None) -> None:
    with pytest.raises(TransientError) as caught:
        airkorea.classify(status, headers, body, "GET x")
    assert caught.value.retry_after == retry_after


def test_items_shapes_are_all_accepted() -> None:
    item = {"stationName": "중구", "dataTime": "2026-11-27 10:00"}
    for items, expected in [([item], 1), ({"item": [item, item]}, 2), ({"item": item}, 1), (item, 1), ("", 0)]:
        body = json.dumps({"response": {"header": {"resultCode": "00"}, "body": {"items": items, "totalCount": 9}}})
        assert len(airkorea.classify(200, {}, body, "GET x").items) == expected


def test_tmdb_recorded_error_bodies() -> None:
    bodies = fixture_json("tmdb/error_bodies.json")
    cases = [
        ("http401_invalid_api_key__recorded_2022", 401, AuthError),
        ("http401_no_api_key__fsharp_data_docs", 401, AuthError),
        ("http404_resource_not_found__radarr_log_2023", 404, NotFoundError),
        ("http404_resource_not_found__recorded_variant_without_success", 404, NotFoundError),
        ("http400_invalid_page_code22", 400, BadRequestError),
        ("http422_search_without_query__recorded", 422, BadRequestError),
        ("http429_legacy_code25__from_2017_client_log", 429, TransientError),
    ]
    for key, status, error in cases:
        with pytest.raises(error):
            tmdb.classify(status, {}, json.dumps(bodies[key]), "GET x")


def test_tmdb_auth_error_explains_both_key_kinds() -> None:
    with pytest.raises(AuthError, match=r"Bearer.*api_key"):
        tmdb.classify(401, {}, '{"status_code":7,"status_message":"Invalid API key"}', "GET x")


@pytest.mark.parametrize(
    ("status", "body"),
    [(504, "<html>Gateway Timeout</html>"), (502, ""), (200, '{"page": 1, "resul'), (200, "<html></html>")],
)
def test_tmdb_transient_cases(status: int, body: str) -> None:
    with pytest.raises(TransientError):
        tmdb.classify(status, {}, body, "GET x")


def test_tmdb_ok_body_is_returned() -> None:
    body = fixture_json("tmdb/now_playing_p1_ko-KR_region-KR_2025-01.json")
    assert tmdb.classify(200, {}, json.dumps(body), "GET x") == body
