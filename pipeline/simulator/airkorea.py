"""AirKorea (data.go.kr B552584 ArpltnInforInqireSvc) handlers, per shared/reference/airkorea.md §2-7."""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final, Literal, cast

from aiohttp import web

from pipeline.simulator import airkorea_data
from pipeline.simulator.faults import DATA_GO_JSON_CONTENT_TYPE, DATA_GO_XML_CONTENT_TYPE, gateway_response
from pipeline.simulator.state import Quirks, SimulatorState, check_aware

_NO_QUIRKS: Final = Quirks()

DEFAULT_ROWS: Final = 10
DEFAULT_PAGE: Final = 1


def key_valid(request: web.Request, state: SimulatorState) -> bool:
    """The ``serviceKey`` as decoded once must equal the decoded key.

    A key percent-encoded twice arrives as ``SimKey%2B...`` and a raw ``+`` arrives as a space: both fail with
    code 30, as on the real gateway.
    """
    return request.query.get("serviceKey") == state.data_go_key


# ------------------------------------------------------------------------------------------------ bodies
# Bodies are written straight from generated rows (``airkorea_data.Row``, values already UTF-8): one item is
# ``template % pick(row)``, with a template per (format, operation, ver, row shape) built on first use, ``null`` /
# ``<coFlag/>`` baked in where that shape has None. The bytes are exactly those the original code produced with
# ``json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))`` (compact, non-ASCII as UTF-8, like the
# real API: tests/fixtures/airkorea/*.json) and with its XML writer; tests/simulator/test_airkorea_bodies.py
# checks that against a copy of that code. Values need no escaping except station texts, which the rows carry
# escaped for the format (``airkorea_data.reading_row(..., fmt)``).

Format = Literal["json", "xml"]
Picker = Callable[[airkorea_data.Row], tuple[bytes, ...]]

_JSON_HEAD: Final = b'{"response":{"body":{"totalCount":%d,"items":['
_JSON_TAIL: Final = b'],"pageNo":%d,"numOfRows":%d},"header":{"resultMsg":"NORMAL_CODE","resultCode":"00"}}}'
_XML_HEAD: Final = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<response>\n  <header>\n    <resultCode>00</resultCode>\n'
    b"    <resultMsg>NORMAL_CODE</resultMsg>\n  </header>\n  <body>\n"
)
_XML_TAIL: Final = (
    b"    <numOfRows>%d</numOfRows>\n    <pageNo>%d</pageNo>\n    <totalCount>%d</totalCount>\n  </body>\n</response>\n"
)


def _picker(positions: list[int]) -> Picker:
    if len(positions) == 1:  # itemgetter of a single position returns the value, not a 1-tuple
        (position,) = positions
        return lambda row: (cast(bytes, row[position]),)
    return cast(Picker, operator.itemgetter(*positions))


def _item_template(fmt: Format, ctprvn: bool, ver: int, row: airkorea_data.Row) -> tuple[bytes, Picker]:
    """``(template, pick)`` writing the items shaped like ``row`` (same fields None) for ``fmt``."""
    parts: list[str] = []
    positions: list[int] = []
    for key in airkorea_data.KEY_ORDERS[(ctprvn, ver)]:
        position = airkorea_data.FIELD_POSITIONS[key]
        null = row[position] is None
        if fmt == "json":
            parts.append(f'"{key}":null' if null else f'"{key}":"%s"')
        else:
            parts.append(f"        <{key}/>\n" if null else f"        <{key}>%s</{key}>\n")
        if not null:
            positions.append(position)
    if fmt == "json":
        return ("{" + ",".join(parts) + "}").encode(), _picker(positions)
    return ("      <item>\n" + "".join(parts) + "      </item>\n").encode(), _picker(positions)


# (format, ctprvn, ver) -> row shape -> item template; a few dozen shapes exist.
_TEMPLATES: Final[dict[tuple[Format, bool, int], dict[bytes | None, tuple[bytes, Picker]]]] = {
    (fmt, ctprvn, ver): {} for fmt in ("json", "xml") for ctprvn, ver in airkorea_data.KEY_ORDERS
}


def _items(fmt: Format, ctprvn: bool, ver: int, rows: list[airkorea_data.Row]) -> list[bytes]:
    templates = _TEMPLATES[(fmt, ctprvn, ver)]
    items: list[bytes] = []
    for row in rows:
        shape = row[airkorea_data.SHAPE]
        found = templates.get(shape)
        if found is None:
            found = templates[shape] = _item_template(fmt, ctprvn, ver, row)
        template, pick = found
        items.append(template % pick(row))
    return items


def render_body(
    fmt: Format, total: int, rows: list[airkorea_data.Row], ctprvn: bool, ver: int, page: int, per_page: int
) -> bytes:
    """The body of a page of ``rows`` (generated with station texts escaped for ``fmt``).

    JSON: ``ctprvn_seoul_v1.5_numOfRows1.json``. XML (the default): ``ctprvn_seoul_nover.xml``, null ->
    ``<coFlag/>``, no items -> ``<items/>``, paging after the items.
    """
    # The envelope goes into the one join over the items: a 3MONTH page is megabytes, and copying it a second
    # time costs as much as writing all its items.
    items = _items(fmt, ctprvn, ver, rows)
    if fmt == "json":
        head, tail = _JSON_HEAD % total, _JSON_TAIL % (page, per_page)
        if not items:
            return head + tail
        items[0] = head + items[0]
        items[-1] += tail
        return b",".join(items)
    tail = _XML_TAIL % (per_page, page, total)
    if not items:
        return b"".join((_XML_HEAD, b"    <items/>\n", tail))
    return b"".join([_XML_HEAD, b"    <items>\n", *items, b"    </items>\n", tail])


def ctprvn_body(fmt: Format, sido: str, index: int, ver: int, page: int, per_page: int) -> bytes:
    """A ``getCtprvnRltmMesureDnsty`` body at hour ``index``."""
    total, rows = airkorea_data.ctprvn_rows(sido, index, ver, page, per_page, fmt)
    return render_body(fmt, total, rows, True, ver, page, per_page)


def _quirky_ctprvn_body(
    fmt: Format,
    sido: str,
    index: int,
    ver: int,
    page: int,
    per_page: int,
    quirks: Quirks,
    revisions: airkorea_data.Revisions | None = None,
) -> bytes:
    """:func:`ctprvn_body` with the quirks that are switched on (the plain one is pinned to a reference)."""
    skip = frozenset(
        name for name, hour in quirks.missing | quirks.never_published if airkorea_data.hour_index(hour) == index
    )
    total, rows = airkorea_data.ctprvn_rows(sido, index, ver, page, per_page, fmt, skip, revisions)
    if quirks.short_answers > 0 and rows:
        quirks.short_answers -= 1
        rows = rows[: len(rows) - max(1, len(rows) // 3)]
    if quirks.under_report_total:
        total = 0
    return _empty_items(fmt, render_body(fmt, total, rows, True, ver, page, per_page), quirks)


def _empty_items(fmt: Format, body: bytes, quirks: Quirks) -> bytes:
    if quirks.items_as_string and fmt == "json":
        return body.replace(b'"items":[]', b'"items":""', 1)
    return body


def _newest(state: SimulatorState) -> int:
    """The newest published hour, held back while a late hour is not published yet."""
    now = state.now()
    newest = airkorea_data.newest_hour(now)
    for hour, minutes in state.quirks.late_hours.items():
        if airkorea_data.hour_index(hour) == newest and now < hour + timedelta(minutes=minutes):
            return newest - 1
    return newest


def _revisions(state: SimulatorState) -> airkorea_data.Revisions | None:
    """The station-hours still provisional at the state's clock, or None when no revision is asked for.

    An hour is provisional until the clock reaches its end + ``revision_delay``: hour ``i`` is final once
    ``hour_end(i) + delay <= now``, i.e. for ``i <= hour_index(now - delay)``. Both operations ask this at the same
    clock, so a station-hour looks the same in the province answer and in the station's series.
    """
    quirks = state.quirks
    if not (quirks.filled_later or quirks.corrected or quirks.revision_share):
        return None
    first = airkorea_data.hour_index(state.now() - quirks.revision_delay) + 1

    def provisional(name: str, hours: set[tuple[str, datetime]]) -> frozenset[tuple[str, int]]:
        indexed = ((station, airkorea_data.hour_index(check_aware(name, hour))) for station, hour in hours)
        return frozenset((station, index) for station, index in indexed if index >= first)

    share = quirks.revision_share
    return airkorea_data.Revisions(
        first=first,
        filled_later=provisional("Quirks.filled_later", quirks.filled_later),
        corrected=provisional("Quirks.corrected", quirks.corrected),
        filled_below=int(share * 2**31),
        shared_below=int(share * 2**32),
    )


def msrstn_body(
    fmt: Format,
    station: airkorea_data.Station,
    newest: int,
    hours: int,
    ver: int,
    page: int,
    per_page: int,
    skip: frozenset[int] = frozenset(),
    revisions: airkorea_data.Revisions | None = None,
) -> bytes:
    """A ``getMsrstnAcctoRltmMesureDnsty`` body for one station, newest hour first."""
    total, rows = airkorea_data.msrstn_rows(station, newest, hours, ver, page, per_page, fmt, skip, revisions)
    return render_body(fmt, total, rows, False, ver, page, per_page)


def _response(fmt: Format, body: bytes) -> web.Response:
    content_type = DATA_GO_JSON_CONTENT_TYPE if fmt == "json" else DATA_GO_XML_CONTENT_TYPE
    return web.Response(body=body, headers={"Content-Type": content_type})


def _positive_int(raw: str | None, default: int) -> int | None:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value >= 1 else None


def _common(request: web.Request) -> tuple[Format, int, int] | None:
    """``(format, pageNo, numOfRows)``, or None for a malformed paging parameter."""
    query = request.query
    fmt: Format = "json" if (query.get("returnType") or "").strip().lower() == "json" else "xml"
    rows = _positive_int(query.get("numOfRows"), DEFAULT_ROWS)
    page = _positive_int(query.get("pageNo"), DEFAULT_PAGE)
    if rows is None or page is None:
        return None
    return fmt, page, rows


async def ctprvn(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    """``getCtprvnRltmMesureDnsty``: every station of a sido (or 전국) at the newest published hour."""
    common = _common(request)
    if common is None:
        return gateway_response("10")
    fmt, page, rows = common
    sido = request.query.get("sidoName")
    if not sido:
        return gateway_response("11")
    ver = airkorea_data.parse_ver(request.query.get("ver"))
    newest, quirks = _newest(state), state.quirks
    if quirks == _NO_QUIRKS:
        return _response(fmt, ctprvn_body(fmt, sido, newest, ver, page, rows))
    return _response(fmt, _quirky_ctprvn_body(fmt, sido, newest, ver, page, rows, quirks, _revisions(state)))


async def msrstn(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    """``getMsrstnAcctoRltmMesureDnsty``: one station's hourly rows for DAILY / MONTH / 3MONTH, newest first."""
    common = _common(request)
    if common is None:
        return gateway_response("10")
    fmt, page, rows = common
    name = request.query.get("stationName")
    if not name:
        return gateway_response("11")
    hours = airkorea_data.DATA_TERM_HOURS.get((request.query.get("dataTerm") or "DAILY").strip().upper())
    if hours is None:
        return gateway_response("10")
    ver = airkorea_data.parse_ver(request.query.get("ver"))
    station = airkorea_data.stations_by_name().get(name)
    if station is None:
        return _response(fmt, _empty_items(fmt, render_body(fmt, 0, [], False, ver, page, rows), state.quirks))
    never = frozenset(
        airkorea_data.hour_index(hour) for name, hour in state.quirks.never_published if name == station.name
    )
    newest = _newest(state)
    return _response(fmt, msrstn_body(fmt, station, newest, hours, ver, page, rows, never, _revisions(state)))


async def unknown_operation(request: web.Request) -> web.StreamResponse:
    """Misspelled operations get a bare 404 (e.g. the all-lowercase ``getMsrstnAcctoRmmrg``, airkorea.md §1)."""
    return web.Response(status=404, text="API not found")
