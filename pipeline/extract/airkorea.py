"""AirKorea (data.go.kr ``B552584/ArpltnInforInqireSvc``): real-time readings per province and per station.

data.go.kr answers many errors with HTTP 200: an ``OpenAPI_ServiceResponse`` envelope, as XML even when
JSON was asked for, or as JSON. The classifier reads the body, not only the status. Normal bodies may be
JSON or XML (the API's default); both become the same :class:`AirPage`.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from pipeline.config import AirKoreaSettings, Secrets
from pipeline.errors import AuthError, BadRequestError, QuotaError, SourceError, TransientError
from pipeline.extract.http import BeforeSend, OnQuota, SourceClient, retry_after_seconds

SOURCE = "airkorea"
SERVICE = "ArpltnInforInqireSvc"
SIDO_OPERATION = "getCtprvnRltmMesureDnsty"
STATION_OPERATION = "getMsrstnAcctoRltmMesureDnsty"

TRANSIENT_CODES = frozenset({"01", "02", "04", "05", "99"})
AUTH_CODES = frozenset({"20", "21", "30", "31", "32", "33"})
QUOTA_CODES = frozenset({"22"})
BAD_REQUEST_CODES = frozenset({"10", "11", "12"})
EMPTY_CODES = frozenset({"00", "03"})  # 03 NODATA_ERROR: an empty result, not a failure
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})

KEY_HINT = (
    "check DATA_GO_API_KEY in .env: either the portal's Encoding or Decoding key works (it is normalised and "
    "sent encoded once); the key must be approved for 한국환경공단_에어코리아_대기오염정보, and a newly issued "
    "key or a new 활용신청 takes 1-2 hours (sometimes up to 4) to activate"
)


@dataclass(frozen=True, slots=True)
class AirPage:
    items: list[dict[str, Any]]
    total_count: int
    page_no: int
    num_of_rows: int


def _gateway_error(code: str, message: str, status: int, request: str) -> SourceError:
    kw: dict[str, Any] = {"source": SOURCE, "url": request, "status": status, "code": code}
    text = f"data.go.kr code {code} {message}".strip()
    if code in TRANSIENT_CODES:
        return TransientError(f"airkorea: {text} for {request}", **kw)
    if code in AUTH_CODES:
        return AuthError(f"airkorea: data.go.kr refused the key ({text}); {KEY_HINT}", **kw)
    if code in QUOTA_CODES:
        return QuotaError(f"airkorea: daily quota exhausted ({text}); calls resume after midnight KST", **kw)
    return BadRequestError(f"airkorea: request refused ({text}): {request}", **kw)


def _items(raw: Any) -> list[dict[str, Any]]:
    """``items`` as a list whatever shape it came in: list, ``{"item": [...]}``, one dict, or ``""``."""
    if isinstance(raw, dict) and "item" in raw:
        raw = raw["item"]
    if isinstance(raw, dict):
        return [raw]
    if isinstance(raw, list):
        return [item for item in raw if isinstance(item, dict)]
    return []


def _xml_item(element: ET.Element) -> dict[str, Any]:
    return {child.tag: (child.text if child.text is not None and child.text.strip() else None) for child in element}


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _page_from_xml(root: ET.Element, status: int, request: str) -> AirPage:
    code = (root.findtext("header/resultCode") or "").strip()
    if code not in EMPTY_CODES:
        raise _gateway_error(code or "??", root.findtext("header/resultMsg") or "", status, request)
    items = [_xml_item(item) for item in root.iterfind("body/items/item")]
    return AirPage(
        items=items,
        total_count=_int(root.findtext("body/totalCount"), len(items)),
        page_no=_int(root.findtext("body/pageNo"), 1),
        num_of_rows=_int(root.findtext("body/numOfRows"), len(items)),
    )


def _parse_xml(raw: bytes, status: int, request: str) -> AirPage:
    head = raw.lstrip()[:200].lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        raise TransientError(
            f"airkorea: an HTML page instead of data (HTTP {status}) for {request}",
            source=SOURCE,
            url=request,
            status=status,
        )
    try:
        root = ET.fromstring(raw.strip())  # noqa: S314 - a trusted API's small body, no entities expanded
    except ET.ParseError:
        raise TransientError(
            f"airkorea: truncated or malformed XML body (HTTP {status}) for {request}",
            source=SOURCE,
            url=request,
            status=status,
        ) from None
    if root.tag == "OpenAPI_ServiceResponse":
        code = (root.findtext("cmmMsgHeader/returnReasonCode") or "??").strip()
        message = root.findtext("cmmMsgHeader/returnAuthMsg") or root.findtext("cmmMsgHeader/errMsg") or ""
        raise _gateway_error(code, message.strip(), status, request)
    if root.tag == "response":
        return _page_from_xml(root, status, request)
    raise BadRequestError(f"airkorea: unexpected XML <{root.tag}> for {request}", source=SOURCE, url=request)


def classify(status: int, headers: Mapping[str, str], raw: bytes | str, request: str) -> AirPage:
    """Parse a data.go.kr response into an :class:`AirPage` or raise the right :class:`SourceError`."""
    kw: dict[str, Any] = {"source": SOURCE, "url": request, "status": status}
    if status in (401, 403):
        raise AuthError(f"airkorea: data.go.kr answered HTTP {status}; {KEY_HINT}", **kw)
    if status in TRANSIENT_STATUS or status >= 500:
        retry_after = retry_after_seconds(headers.get("Retry-After"))
        raise TransientError(f"airkorea: HTTP {status} for {request}", retry_after=retry_after, **kw)
    if status >= 400:
        raise BadRequestError(f"airkorea: HTTP {status} for {request}", **kw)
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if raw.lstrip()[:1] == b"<":
        return _parse_xml(raw, status, request)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise TransientError(f"airkorea: truncated or non-JSON body (HTTP {status}) for {request}", **kw) from None
    if not isinstance(body, dict):
        raise BadRequestError(f"airkorea: unexpected JSON body for {request}", **kw)
    gateway = body.get("OpenAPI_ServiceResponse")
    if isinstance(gateway, dict):
        header = gateway.get("cmmMsgHeader") or {}
        code = str(header.get("returnReasonCode") or "??").strip()
        message = str(header.get("returnAuthMsg") or header.get("errMsg") or "").strip()
        raise _gateway_error(code, message, status, request)
    response = body.get("response")
    if not isinstance(response, dict):
        raise BadRequestError(f"airkorea: JSON body without 'response' for {request}", **kw)
    header = response.get("header") or {}
    code = str(header.get("resultCode") or "").strip()
    if code not in EMPTY_CODES:
        raise _gateway_error(code or "??", str(header.get("resultMsg") or ""), status, request)
    payload = response.get("body") or {}
    if not isinstance(payload, dict):
        payload = {}
    items = _items(payload.get("items"))
    return AirPage(
        items=items,
        total_count=_int(payload.get("totalCount"), len(items)),
        page_no=_int(payload.get("pageNo"), 1),
        num_of_rows=_int(payload.get("numOfRows"), len(items)),
    )


def raw_json_page(status: int, headers: Mapping[str, str], raw: bytes | str, request: str) -> bytes | AirPage:
    """A normal JSON page as raw bytes, left to parse elsewhere (a backfill's worker process); anything else
    — an error envelope, XML, an HTTP error — goes through :func:`classify` here, which raises as usual.

    AirKorea's JSON ends with its header, so a normal page is recognised from its last bytes.
    """
    if status == 200 and isinstance(raw, bytes) and raw[:1] == b"{" and _NORMAL_TAIL in raw[-160:].replace(b" ", b""):
        return raw
    return classify(status, headers, raw, request)


_NORMAL_TAIL = b'"resultCode":"00"'


def make_client(
    session: aiohttp.ClientSession,
    settings: AirKoreaSettings,
    secrets: Secrets,
    *,
    before_send: BeforeSend | None = None,
    on_quota: OnQuota | None = None,
) -> SourceClient:
    return SourceClient(
        session,
        source=SOURCE,
        base_url=f"{settings.base_url}/{SERVICE}",
        classify=classify,
        concurrency=settings.concurrency,
        rate_limit=settings.rate_limit,
        timeout=settings.timeout,
        attempts=settings.attempts,
        max_retry_time=settings.max_retry_time,
        # the decoded key, passed as a parameter: aiohttp percent-encodes it exactly once
        params={"serviceKey": secrets.data_go_api_key or ""},
        before_send=before_send,
        on_quota=on_quota,
    )


async def _fetch_pages(
    client: SourceClient, operation: str, params: Mapping[str, str], num_of_rows: int
) -> AsyncIterator[AirPage]:
    """All pages of one query, in order. ``totalCount`` is not always right, so an empty page also stops."""
    base = {**params, "returnType": "json", "numOfRows": str(num_of_rows)}
    page_no, last = 1, 1
    while page_no <= last:
        page: AirPage = await client.get(operation, {**base, "pageNo": str(page_no)}, operation)
        if not page.items:
            return
        yield page
        seen = (page_no - 1) * num_of_rows + len(page.items)
        if page.total_count >= seen:
            last = math.ceil(page.total_count / num_of_rows)
        else:  # totalCount under-reports (seen for 광주/전남): a full page means there may be more
            last = page_no + 1 if len(page.items) >= num_of_rows else page_no
        page_no += 1


async def fetch_sido_pages(client: SourceClient, sido: str, settings: AirKoreaSettings) -> AsyncIterator[AirPage]:
    """Every station's newest hour in one province (or ``전국``)."""
    params = {"sidoName": sido, "ver": settings.ver}
    async for page in _fetch_pages(client, SIDO_OPERATION, params, settings.num_of_rows):
        yield page


#: rows a station series holds per window, for planning calls against the quota
TERM_ROWS = {"DAILY": 24, "MONTH": 31 * 24, "3MONTH": 93 * 24}
NATIONWIDE_STATIONS = 700  # an upper bound of 전국's station count, for planning


def planned_calls(settings: AirKoreaSettings, job: str, data_term: str | None = None) -> dict[str, int]:
    """Calls a job will make per operation (one page per province unless ``num_of_rows`` is small)."""
    rows = settings.num_of_rows
    if job == "airkorea_sido":
        per_sido = [math.ceil((NATIONWIDE_STATIONS if s == "전국" else 150) / rows) for s in settings.sidos]
        return {SIDO_OPERATION: sum(per_sido)}
    pages = math.ceil(TERM_ROWS[data_term or settings.data_term] / rows)
    return {STATION_OPERATION: pages * len(settings.stations)}


async def fetch_station_pages(
    client: SourceClient, station: str, settings: AirKoreaSettings, data_term: str | None = None
) -> AsyncIterator[AirPage]:
    """One station's hourly series over ``dataTerm`` (DAILY, MONTH or 3MONTH), newest first."""
    params = {"stationName": station, "dataTerm": data_term or settings.data_term, "ver": settings.ver}
    async for page in _fetch_pages(client, STATION_OPERATION, params, settings.num_of_rows):
        yield page
