"""AirKorea (data.go.kr B552584 ArpltnInforInqireSvc) handlers, per shared/reference/airkorea.md §2-7."""

from __future__ import annotations

import json
from typing import Final

from aiohttp import web

from pipeline.simulator import data
from pipeline.simulator.faults import DATA_GO_JSON_CONTENT_TYPE, DATA_GO_XML_CONTENT_TYPE, gateway_response
from pipeline.simulator.state import SimulatorState

Item = dict[str, str | None]

DEFAULT_ROWS: Final = 10
DEFAULT_PAGE: Final = 1


def key_valid(request: web.Request, state: SimulatorState) -> bool:
    """The ``serviceKey`` as decoded once must equal the decoded key.

    A key percent-encoded twice arrives as ``SimKey%2B...`` and a raw ``+`` arrives as a space: both fail with
    code 30, as on the real gateway.
    """
    return request.query.get("serviceKey") == state.data_go_key


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_xml(total: int, items: list[Item], page: int, rows: int) -> str:
    """The default XML body (``ctprvn_seoul_nover.xml``): null -> ``<coFlag/>``, paging after the items."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<response>\n  <header>\n    <resultCode>00</resultCode>\n'
        "    <resultMsg>NORMAL_CODE</resultMsg>\n  </header>\n  <body>\n"
    ]
    if items:
        parts.append("    <items>\n")
        for item in items:
            parts.append("      <item>\n")
            for key, value in item.items():
                if value is None:
                    parts.append(f"        <{key}/>\n")
                else:
                    parts.append(f"        <{key}>{_escape(value)}</{key}>\n")
            parts.append("      </item>\n")
        parts.append("    </items>\n")
    else:
        parts.append("    <items/>\n")
    parts.append(
        f"    <numOfRows>{rows}</numOfRows>\n    <pageNo>{page}</pageNo>\n"
        f"    <totalCount>{total}</totalCount>\n  </body>\n</response>\n"
    )
    return "".join(parts)


def render(json_wanted: bool, total: int, items: list[Item], page: int, rows: int) -> web.Response:
    if json_wanted:
        envelope = {
            "response": {
                "body": {"totalCount": total, "items": items, "pageNo": page, "numOfRows": rows},
                "header": {"resultMsg": "NORMAL_CODE", "resultCode": "00"},
            }
        }
        text = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
        return web.Response(body=text.encode(), headers={"Content-Type": DATA_GO_JSON_CONTENT_TYPE})
    body = render_xml(total, items, page, rows).encode()
    return web.Response(body=body, headers={"Content-Type": DATA_GO_XML_CONTENT_TYPE})


def _positive_int(raw: str | None, default: int) -> int | None:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value >= 1 else None


def _common(request: web.Request) -> tuple[bool, int, int] | None:
    """``(json wanted, pageNo, numOfRows)``, or None for a malformed paging parameter."""
    query = request.query
    json_wanted = (query.get("returnType") or "").strip().lower() == "json"
    rows = _positive_int(query.get("numOfRows"), DEFAULT_ROWS)
    page = _positive_int(query.get("pageNo"), DEFAULT_PAGE)
    if rows is None or page is None:
        return None
    return json_wanted, page, rows


async def ctprvn(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    """``getCtprvnRltmMesureDnsty``: every station of a sido (or 전국) at the newest published hour."""
    common = _common(request)
    if common is None:
        return gateway_response("10")
    json_wanted, page, rows = common
    sido = request.query.get("sidoName")
    if not sido:
        return gateway_response("11")
    ver = data.parse_ver(request.query.get("ver"))
    newest = data.newest_hour(state.now())
    total, items = data.ctprvn_page(sido, newest, ver, page, rows)
    return render(json_wanted, total, items, page, rows)


async def msrstn(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    """``getMsrstnAcctoRltmMesureDnsty``: one station's hourly rows for DAILY / MONTH / 3MONTH, newest first."""
    common = _common(request)
    if common is None:
        return gateway_response("10")
    json_wanted, page, rows = common
    name = request.query.get("stationName")
    if not name:
        return gateway_response("11")
    hours = data.DATA_TERM_HOURS.get((request.query.get("dataTerm") or "DAILY").strip().upper())
    if hours is None:
        return gateway_response("10")
    station = data.stations_by_name().get(name)
    if station is None:
        return render(json_wanted, 0, [], page, rows)
    ver = data.parse_ver(request.query.get("ver"))
    total, items = data.msrstn_page(station, data.newest_hour(state.now()), hours, ver, page, rows)
    return render(json_wanted, total, items, page, rows)


async def unknown_operation(request: web.Request) -> web.StreamResponse:
    """Misspelled operations get a bare 404 (e.g. the all-lowercase ``getMsrstnAcctoRmmrg``, airkorea.md §1)."""
    return web.Response(status=404, text="API not found")
