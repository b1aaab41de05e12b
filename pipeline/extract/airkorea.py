"""AirKorea (data.go.kr ``B552584/ArpltnInforInqireSvc``): real-time readings per province and per station.

This module is the one home of what the API serves, outside the simulator (which keeps its own copy, to stay
an independent oracle): the operations and their query parameters, the ``dataTerm`` windows (how far back
each reaches, how many rows it holds), the publish delay and so the newest published hour, the page size
limit, and the gateway's result codes. The backfill's window choice, the daemon's catch-up window and quota
planning ask it.

data.go.kr answers many errors with HTTP 200: an ``OpenAPI_ServiceResponse`` envelope, as XML even when
JSON was asked for, or as JSON. The classifier reads the body, not only the status. Normal bodies may be
JSON or XML (the API's default); both become the same :class:`AirPage`.

Importing it loads no HTTP library (``pipeline status`` plans quota with it): the request gate is imported
where a client is made.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, cast

import orjson

from pipeline.errors import AuthError, BadRequestError, QuotaError, SourceError, TransientError
from pipeline.extract.headers import retry_after_seconds
from pipeline.redaction import printable

if TYPE_CHECKING:  # config validates numOfRows against MAX_ROWS_PER_PAGE: this module must not import it
    import aiohttp

    from pipeline.config import AirKoreaSettings, DataTerm
    from pipeline.extract.http import BeforeSend, OnQuota, SourceClient
    from pipeline.keys import Secrets
    from pipeline.transform.airkorea import RawAirItem

SOURCE = "airkorea"
SERVICE = "ArpltnInforInqireSvc"
SIDO_OPERATION = "getCtprvnRltmMesureDnsty"
STATION_OPERATION = "getMsrstnAcctoRltmMesureDnsty"
OPERATIONS = (SIDO_OPERATION, STATION_OPERATION)

# --- what the API serves ------------------------------------------------------------------------------------

#: AirKorea publishes each hour about 15 minutes after it ends (tech doc v1.3 §0.2): poll after that
PUBLISH_DELAY = timedelta(minutes=15)
#: the largest ``numOfRows`` the API takes: a 3MONTH series (~2,200 rows) fits one call
MAX_ROWS_PER_PAGE = 10_000
#: the ``sidoName`` that lists every station of the country in one answer
NATIONWIDE: Final = "전국"
#: upper bounds of the stations a province answer lists (전국: the whole country), for planning calls
PROVINCE_STATIONS = 150
NATIONWIDE_STATIONS = 700


@dataclass(frozen=True, slots=True)
class Window:
    """A ``dataTerm`` of the station series: how far back from the newest published hour it dependably reaches
    (its oldest hour ends ``reach - 1 h`` before the newest), and how many hourly rows it holds at most."""

    term: DataTerm
    reach: timedelta
    rows: int


#: smallest first. DAILY: 23-24 rows are served (a recorded DAILY body has totalCount 23), so 23 hours are
#: dependable; MONTH and 3MONTH "about" one and three months (the simulator serves 30 and 92 days exactly).
WINDOWS: tuple[Window, ...] = (
    Window("DAILY", timedelta(hours=23), 24),
    Window("MONTH", timedelta(days=30), 31 * 24),
    Window("3MONTH", timedelta(days=92), 93 * 24),
)
WINDOW = {window.term: window for window in WINDOWS}
LARGEST_WINDOW = WINDOWS[-1]


def newest_published_hour(now: datetime) -> datetime:
    """The newest hour AirKorea has published at ``now``: the end of that hour (what ``dataTime`` labels)."""
    return (now - PUBLISH_DELAY).replace(minute=0, second=0, microsecond=0)


def smallest_window(reach: timedelta) -> Window | None:
    """The smallest window reaching ``reach`` back from the newest published hour; ``None`` past the largest."""
    return next((window for window in WINDOWS if reach <= window.reach), None)


def reach_of(oldest: datetime, now: datetime) -> timedelta:
    """How far back a series fetched at ``now`` must reach to include the hour ending at ``oldest``."""
    return newest_published_hour(now) - oldest + timedelta(hours=1)


def oldest_served_hour(now: datetime) -> datetime:
    """The end of the oldest hour the largest window serves at ``now``."""
    return newest_published_hour(now) - LARGEST_WINDOW.reach + timedelta(hours=1)


def late_publication_limit(now: datetime) -> datetime:
    """The end of the oldest hour the daily window still holds at ``now``: until then AirKorea may publish an
    hour late (a hole younger than this is worth trying again)."""
    return newest_published_hour(now) - WINDOWS[0].reach + timedelta(hours=1)


def sido_query(sido: str, *, ver: str, rows: int, page: int = 1) -> dict[str, str]:
    """Query parameters of ``getCtprvnRltmMesureDnsty``: every station's newest hour in a province."""
    return {"sidoName": sido, "ver": ver, "returnType": "json", "numOfRows": str(rows), "pageNo": str(page)}


def station_query(station: str, term: DataTerm, *, ver: str, rows: int, page: int = 1) -> dict[str, str]:
    """Query parameters of ``getMsrstnAcctoRltmMesureDnsty``: one station's series over a window."""
    return {
        "stationName": station,
        "dataTerm": term,
        "ver": ver,
        "returnType": "json",
        "numOfRows": str(rows),
        "pageNo": str(page),
    }


def sido_calls(sidos: tuple[str, ...] | list[str], rows: int) -> int:
    """Calls one poll of ``sidos`` makes (one page per province unless ``rows`` is small)."""
    return sum(math.ceil((NATIONWIDE_STATIONS if s == NATIONWIDE else PROVINCE_STATIONS) / rows) for s in sidos)


def station_calls(stations: int, term: DataTerm, rows: int) -> int:
    """Calls fetching ``stations`` series over ``term`` make, ``rows`` a page."""
    return math.ceil(WINDOW[term].rows / rows) * stations


# --- responses ----------------------------------------------------------------------------------------------

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
    items: list[RawAirItem]
    total_count: int
    page_no: int
    num_of_rows: int
    shortfall: int = 0  # items this page lacked of what totalCount promised, twice in a row (the rows are kept)

    def describe_shortfall(self, what: str) -> str:
        expected = len(self.items) + self.shortfall
        return (
            f"{what}: page {self.page_no} held {len(self.items)} of the {expected} items its totalCount "
            f"({self.total_count}) promises, also when fetched again; kept what came"
        )


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


_CODE_NAME = re.compile(r"^[A-Z][A-Z0-9_]+$")


def _gateway_fields(header: Mapping[str, Any]) -> tuple[str, str]:
    """``(code, message)`` of a gateway envelope's ``cmmMsgHeader`` (from XML or JSON), made printable.

    The message is the gateway's own words: its code name (``SERVICE_KEY_IS_NOT_REGISTERED_ERROR``) and, when
    there is one, its sentence. XML bodies put the name in ``returnAuthMsg`` (``errMsg`` is ``SERVICE ERROR``);
    the JSON envelope under HTTP 401/403 puts it in ``errMsg`` and a Korean sentence in ``returnAuthMsg``."""
    code = printable(str(header.get("returnReasonCode") or "??").strip())
    given = (str(t).strip() for t in (header.get("returnAuthMsg"), header.get("errMsg")) if t is not None)
    texts = [printable(t) for t in given if t and t != "SERVICE ERROR"]
    names = [t for t in texts if _CODE_NAME.match(t)]
    words = [t for t in texts if t not in names]
    return code, ": ".join(filter(None, (" ".join(names), " ".join(words))))


def _xml_header(root: ET.Element) -> dict[str, str | None]:
    return {child.tag: child.text for child in root.iterfind("cmmMsgHeader/*")}


def _envelope(raw: bytes) -> tuple[str, str] | None:
    """``(code, message)`` of a gateway envelope (JSON or XML) in ``raw``, if it is one."""
    text = raw.strip()
    try:
        if text[:1] == b"<":
            root = ET.fromstring(text)  # noqa: S314 - a trusted API's small body, no entities expanded
            if root.tag != "OpenAPI_ServiceResponse":
                return None
            header: Any = _xml_header(root)
        else:
            body = orjson.loads(text)
            header = body.get("OpenAPI_ServiceResponse", {}).get("cmmMsgHeader") if isinstance(body, dict) else None
            if not isinstance(header, dict):
                return None
    except (ET.ParseError, orjson.JSONDecodeError, AttributeError):
        return None
    return _gateway_fields(header)


def _items(raw: Any) -> list[RawAirItem]:
    """``items`` as a list whatever shape it came in: list, ``{"item": [...]}``, one dict, or ``""``.

    Its objects are taken as :class:`RawAirItem` unchecked: the transform checks every field it reads.
    """
    if isinstance(raw, dict) and "item" in raw:
        raw = raw["item"]
    if isinstance(raw, dict):
        raw = [raw]
    objects = [item for item in raw if isinstance(item, dict)] if isinstance(raw, list) else []
    return cast("list[RawAirItem]", objects)


def _xml_item(element: ET.Element) -> RawAirItem:
    """An ``<item>`` as a :class:`RawAirItem`, unchecked like :func:`_items`'s; an empty element is ``None``."""
    item = {child.tag: (child.text if child.text is not None and child.text.strip() else None) for child in element}
    return cast("RawAirItem", item)


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _page_from_xml(root: ET.Element, status: int, request: str) -> AirPage:
    code = (root.findtext("header/resultCode") or "").strip()
    if code not in EMPTY_CODES:
        message = printable(root.findtext("header/resultMsg") or "")
        raise _gateway_error(printable(code or "??"), message, status, request)
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
        code, message = _gateway_fields(_xml_header(root))
        raise _gateway_error(code, message, status, request)
    if root.tag == "response":
        return _page_from_xml(root, status, request)
    raise BadRequestError(f"airkorea: unexpected XML <{root.tag}> for {request}", source=SOURCE, url=request)


def classify(status: int, headers: Mapping[str, str], raw: bytes | str, request: str) -> AirPage:
    """Parse a data.go.kr response into an :class:`AirPage` or raise the right :class:`SourceError`."""
    kw: dict[str, Any] = {"source": SOURCE, "url": request, "status": status}
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if status in (401, 403):
        found = _envelope(raw)
        if found is None:
            raise AuthError(f"airkorea: data.go.kr refused the key (HTTP {status}, no gateway code); {KEY_HINT}", **kw)
        code, message = found
        raise AuthError(
            f"airkorea: data.go.kr refused the key (HTTP {status}, code {code} {message}); {KEY_HINT}", code=code, **kw
        )
    if status in TRANSIENT_STATUS or status >= 500:
        retry_after = retry_after_seconds(headers.get("Retry-After"))
        raise TransientError(f"airkorea: HTTP {status} for {request}", retry_after=retry_after, **kw)
    if status >= 400:
        raise BadRequestError(f"airkorea: HTTP {status} for {request}", **kw)
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
        code, message = _gateway_fields(header)
        raise _gateway_error(code, message, status, request)
    response = body.get("response")
    if not isinstance(response, dict):
        raise BadRequestError(f"airkorea: JSON body without 'response' for {request}", **kw)
    header = response.get("header") or {}
    code = str(header.get("resultCode") or "").strip()
    if code not in EMPTY_CODES:
        raise _gateway_error(printable(code or "??"), printable(str(header.get("resultMsg") or "")), status, request)
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
    from pipeline.extract.http import SourceClient  # the gate loads aiohttp: only where requests are made

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


def _expected(total_count: int, page_no: int, num_of_rows: int) -> int:
    """Items page ``page_no`` should hold if ``totalCount`` is right."""
    return max(0, min(num_of_rows, total_count - (page_no - 1) * num_of_rows))


async def _fetch_pages(
    client: SourceClient, operation: str, query: Callable[[int], dict[str, str]], num_of_rows: int
) -> AsyncIterator[AirPage]:
    """All pages of one query, in order; ``totalCount`` is trusted in neither direction.

    Under-reported (0, or fewer than the items present: seen for 광주/전남), a full page still asks for the next
    one. A page with fewer items than ``totalCount`` promises is fetched once more; if it stays short it is
    yielded with its ``shortfall`` (the caller warns; the rows are kept) and paging goes on as far as
    ``totalCount`` says. An empty page ends the query.
    """
    page_no, last = 1, 1
    while page_no <= last:
        page: AirPage = await client.get(operation, query(page_no), operation)
        expected = _expected(page.total_count, page_no, num_of_rows)
        if len(page.items) < expected:
            again: AirPage = await client.get(operation, query(page_no), operation)
            page = again if len(again.items) >= len(page.items) else page
            if len(page.items) < expected:
                page = replace(page, shortfall=expected - len(page.items))
        if not page.items:
            if page.shortfall:
                yield page
            return
        yield page
        seen = (page_no - 1) * num_of_rows + len(page.items)
        if page.total_count >= seen:
            last = math.ceil(page.total_count / num_of_rows)
        else:  # totalCount under-reports: a full page means there may be more
            last = page_no + 1 if len(page.items) >= num_of_rows else page_no
        page_no += 1


async def fetch_sido_pages(client: SourceClient, sido: str, settings: AirKoreaSettings) -> AsyncIterator[AirPage]:
    """Every station's newest hour in one province (or ``전국``)."""
    rows = settings.num_of_rows
    async for page in _fetch_pages(
        client, SIDO_OPERATION, lambda page: sido_query(sido, ver=settings.ver, rows=rows, page=page), rows
    ):
        yield page


async def fetch_station_pages(
    client: SourceClient, station: str, settings: AirKoreaSettings, data_term: DataTerm | None = None
) -> AsyncIterator[AirPage]:
    """One station's hourly series over ``dataTerm`` (DAILY, MONTH or 3MONTH), newest first."""
    term, rows = data_term or settings.data_term, settings.num_of_rows
    async for page in _fetch_pages(
        client,
        STATION_OPERATION,
        lambda page: station_query(station, term, ver=settings.ver, rows=rows, page=page),
        rows,
    ):
        yield page
