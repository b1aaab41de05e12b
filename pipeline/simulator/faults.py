"""Failure responses: TMDB error bodies, data.go.kr gateway envelopes, HTML error pages, broken connections.

Shapes follow shared/reference/tmdb.md §6-7 and airkorea.md §6.9 and §7.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Final, Literal

from aiohttp import web

from pipeline.simulator.state import GATEWAY_MESSAGES, Fault

Family = Literal["tmdb", "airkorea"]

TMDB_CONTENT_TYPE: Final = "application/json;charset=utf-8"
DATA_GO_JSON_CONTENT_TYPE: Final = "application/json;charset=UTF-8"
DATA_GO_XML_CONTENT_TYPE: Final = "text/xml;charset=UTF-8"
HTML_CONTENT_TYPE: Final = "text/html; charset=iso-8859-1"

TMDB_MESSAGES: Final[dict[int, str]] = {
    7: "Invalid API key: You must be granted a valid key.",
    11: "Internal error: Something went wrong, contact TMDB.",
    22: "Invalid page: Pages start at 1 and max at 500. They are expected to be an integer.",
    23: "Invalid date: Format needs to be YYYY-MM-DD.",
    25: "Your request count (41) is over the allowed limit of (40).",
    27: "Too many append to response objects: The maximum number of remote calls is 20.",
    34: "The resource you requested could not be found.",
}

APACHE_503: Final = (
    "<html><head><title>503 Service Temporarily Unavailable</title></head><body>\n"
    "<h1>Service Temporarily Unavailable</h1>\n"
    "<p>The server is temporarily unable to service your\n"
    "request due to maintenance downtime or capacity\n"
    "problems. Please try again later.</p>\n"
    "</body></html>\n"
)

GATEWAY_TIMEOUT_504: Final = (
    "<html>\r\n"
    "<head><title>504 Gateway Time-out</title></head>\r\n"
    "<body>\r\n"
    "<center><h1>504 Gateway Time-out</h1></center>\r\n"
    "<hr><center>openresty</center>\r\n"
    "</body>\r\n"
    "</html>\r\n"
)

INTERNAL_ERROR_500: Final = (
    "<html><head><title>500 Internal Server Error</title></head><body>\n"
    "<h1>Internal Server Error</h1>\n"
    "<p>The server encountered an internal error or\n"
    "misconfiguration and was unable to complete\n"
    "your request.</p>\n"
    "</body></html>\n"
)


def json_response(body: object, *, status: int = 200, content_type: str = TMDB_CONTENT_TYPE) -> web.Response:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return web.Response(status=status, body=text.encode(), headers={"Content-Type": content_type})


def tmdb_error(status: int, code: int, *, headers: dict[str, str] | None = None) -> web.Response:
    """A TMDB error body. Code 7 uses the key order of the recorded 401 capture."""
    message = TMDB_MESSAGES[code]
    if code == 7:
        body: dict[str, object] = {"status_code": 7, "status_message": message, "success": False}
    else:
        body = {"success": False, "status_code": code, "status_message": message}
    response = json_response(body, status=status)
    if headers:
        response.headers.update(headers)
    return response


def gateway_fields(code: str) -> tuple[str, str]:
    """``(errMsg, returnAuthMsg)`` of a data.go.kr gateway error."""
    if code == "05":
        return "SERVICETIMEOUT_ERROR", "서비스 연결실패 에러"
    return "SERVICE ERROR", GATEWAY_MESSAGES[code]


#: the Korean sentences of the JSON envelope served under HTTP 401/403 (airkorea.md §7, variant b′)
GATEWAY_SENTENCES: Final[dict[str, str]] = {
    "20": "서비스 접근이 거부되었습니다.",
    "30": "등록되지 않은 서비스키입니다.",
    "31": "기한이 만료된 서비스키입니다.",
    "32": "등록되지 않은 도메인명 또는 IP주소입니다.",
}


def gateway_refusal_json(status: int, code: str) -> web.Response:
    """The newer gateway's refusal: the JSON envelope under HTTP 401/403, ``errMsg`` holding the code name and
    ``returnAuthMsg`` a Korean sentence (the roles of the XML body's fields swapped)."""
    header = {
        "errMsg": GATEWAY_MESSAGES[code],
        "returnAuthMsg": GATEWAY_SENTENCES.get(code, "서비스 오류입니다."),
        "returnReasonCode": code,
    }
    envelope = {"OpenAPI_ServiceResponse": {"cmmMsgHeader": header}}
    return json_response(envelope, status=status, content_type=DATA_GO_JSON_CONTENT_TYPE)


def gateway_response(code: str, fmt: str = "xml") -> web.Response:
    """The data.go.kr gateway envelope under HTTP 200 (XML by default, whatever returnType asked for)."""
    err_msg, auth_msg = gateway_fields(code)
    if fmt == "json":
        envelope = {
            "OpenAPI_ServiceResponse": {
                "cmmMsgHeader": {"errMsg": err_msg, "returnAuthMsg": auth_msg, "returnReasonCode": code}
            }
        }
        return json_response(envelope, content_type=DATA_GO_JSON_CONTENT_TYPE)
    text = (
        "<OpenAPI_ServiceResponse>\n"
        "\t<cmmMsgHeader>\n"
        f"\t\t<errMsg>{err_msg}</errMsg>\n"
        f"\t\t<returnAuthMsg>{auth_msg}</returnAuthMsg>\n"
        f"\t\t<returnReasonCode>{code}</returnReasonCode>\n"
        "\t</cmmMsgHeader>\n"
        "</OpenAPI_ServiceResponse>\n"
    )
    return web.Response(body=text.encode(), headers={"Content-Type": DATA_GO_XML_CONTENT_TYPE})


def _text(status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> web.Response:
    return web.Response(status=status, body=text.encode(), headers={"Content-Type": content_type})


def retry_after_value(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def fault_response(fault: Fault, family: Family) -> web.Response:
    """The response for every fault kind that is a plain HTTP answer (not reset/truncated/slow)."""
    kind = fault.kind
    if kind == "429":
        headers = {} if fault.retry_after is None else {"Retry-After": retry_after_value(fault.retry_after)}
        if family == "tmdb":
            return tmdb_error(429, 25, headers=headers)
        response = _text(429, "Too Many Requests")
        response.headers.update(headers)
        return response
    if kind == "500":
        return tmdb_error(500, 11) if family == "tmdb" else _text(500, INTERNAL_ERROR_500, HTML_CONTENT_TYPE)
    if kind == "503_html":
        return _text(503, APACHE_503, HTML_CONTENT_TYPE)
    if kind == "504_html":
        return _text(504, GATEWAY_TIMEOUT_504, "text/html")
    if kind == "gateway":
        return gateway_response(fault.code, fault.fmt)
    if kind == "401":
        return tmdb_error(401, 7) if family == "tmdb" else _text(401, "Unauthorized")
    if kind == "403":
        if family == "airkorea" and fault.fmt == "json":  # the gateway's JSON envelope under HTTP 403
            return gateway_refusal_json(403, fault.code)
        return _text(403, "Forbidden")
    raise ValueError(f"fault kind {kind!r} is not a plain response")


def reset_connection(request: web.Request) -> web.Response:
    """Drop the TCP connection with an RST and no response at all.

    The returned response is never sent: aiohttp sees the closed transport and drops it quietly.
    """
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # SO_LINGER 0: close() sends RST instead of FIN, so the client sees "connection reset by peer".
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=500)


async def truncated_response(request: web.Request, real: web.Response) -> web.StreamResponse:
    """Announce ``real``'s full Content-Length, send about half the body, then close the connection."""
    body = real.body if isinstance(real.body, bytes) else b""
    response = web.StreamResponse(status=real.status)
    for name, value in real.headers.items():
        if name.lower() not in ("content-length", "transfer-encoding"):
            response.headers[name] = value
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body[: max(1, len(body) // 2)])
    if request.transport is not None:
        # close() (not abort()) so the half already written is flushed before the FIN.
        request.transport.close()
    return response
