"""Hypothesis strategies for raw HTTP/1.1 messages, valid and not.

Requests (client side): a method (standard, extension token or invalid bytes), a
target (origin-form with percent-encoding and a query, absolute-form for the
proxy's own or a foreign host, asterisk-form, invalid bytes), a version, header
fields (valid tokens and field values, or invalid bytes, obs-fold, a line without
a colon) and a body framed by Content-Length (right or wrong), chunked (well or
badly), both, or none.

Responses (upstream side): a status line (valid or not), a header section and a
framing, with ``valid`` telling whether every part was a valid choice, so a test
can require that a valid response passes through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VCHAR = "".join(chr(c) for c in range(0x21, 0x7F))
PCHAR = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@"
STANDARD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
# Bytes never allowed in a request line or a field: controls, DEL, and bytes
# that would change the framing.
BAD_BYTES = st.sampled_from([b"\x00", b"\x01", b"\x7f", b"\r", b"\n", b"\x0b", b"\xff", b" "])

tokens = st.text(TCHAR, min_size=1, max_size=16)
field_values = st.text(VCHAR + " \t", max_size=60).map(lambda v: v.strip(" \t"))


@st.composite
def _with_bad_byte(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """``base`` with one invalid byte put somewhere in it."""
    raw = draw(base)
    at = draw(st.integers(0, len(raw)))
    return raw[:at] + draw(BAD_BYTES) + raw[at:]


def _ascii(s: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    return s.map(lambda v: v.encode("latin-1"))


methods = st.one_of(
    st.sampled_from(STANDARD).map(str.encode),
    _ascii(tokens),
    _with_bad_byte(_ascii(tokens)),
)

_pct = st.one_of(
    st.integers(0, 255).map(lambda b: f"%{b:02X}"),
    st.sampled_from(["%", "%G1", "%2", "%2f", "%00", "%25"]),
)
_segment = st.lists(st.one_of(st.text(PCHAR, min_size=1, max_size=8), _pct), max_size=4).map(
    "".join
)
_path = st.lists(_segment, min_size=1, max_size=5).map(lambda s: "/" + "/".join(s))
_query = st.lists(st.one_of(st.text(PCHAR + "/?", max_size=12), _pct), max_size=3).map("".join)


@st.composite
def origin_forms(draw: st.DrawFn) -> str:
    path = draw(_path)
    return path + ("?" + draw(_query) if draw(st.booleans()) else "")


def targets(own_authority: str) -> st.SearchStrategy[bytes]:
    origin = _ascii(origin_forms())
    absolute = st.builds(
        lambda host, t: f"http://{host}{t}".encode(),
        st.sampled_from([own_authority, "elsewhere.example", "127.0.0.1:1", "[::1]"]),
        origin_forms(),
    )
    return st.one_of(
        origin,
        absolute,
        st.just(b"*"),
        _with_bad_byte(origin),
        st.text(min_size=1, max_size=8).map(lambda t: ("/" + t).encode("utf-8")),
    )


versions = st.sampled_from(
    [b"HTTP/1.1"] * 6 + [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.2", b"HTTP/1", b"http/1.1", b"HTX/1.1"]
)

valid_fields = st.tuples(_ascii(tokens), _ascii(field_values))
_special_field = st.tuples(
    st.sampled_from(
        [
            b"Connection",
            b"Expect",
            b"Upgrade",
            b"TE",
            b"Trailer",
            b"Keep-Alive",
            b"X-Request-Id",
            b"traceparent",
            b"Forwarded",
            b"X-Forwarded-For",
            b"Authorization",
            b"Cookie",
            b"Accept",
            b"Content-Type",
            b"Via",
            b"Proxy-Connection",
        ]
    ),
    st.sampled_from(
        [
            b"close",
            b"keep-alive",
            b"100-continue",
            b"websocket",
            b"trailers",
            b"X-Custom, close",
            b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            b"",
            b"Bearer abc",
            b"a=b; c=d",
            b"application/json",
            b"1.1 other",
            b"for=1.2.3.4",
            b"\xe4\xf6",
        ]
    ),
)
_bad_field = st.one_of(
    st.tuples(_with_bad_byte(_ascii(tokens)), _ascii(field_values)),
    st.tuples(_ascii(tokens), _with_bad_byte(_ascii(field_values))),
    st.tuples(_ascii(tokens), _ascii(field_values).map(lambda v: v + b"\r\n folded")),
    st.just((b"", b"no name")),
)


def field_lines(fields: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(name + b": " + value + b"\r\n" for name, value in fields)


FRAMINGS = (
    "none",
    "length",
    "length",
    "short",
    "long",
    "chunked",
    "chunked",
    "bad-chunk",
    "both",
    "two-lengths",
)


def request_framing(body: bytes, framing: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The framing fields and the bytes of ``body`` as ``framing`` sends it."""
    n = str(len(body)).encode()
    if framing == "none":
        return [], b""
    if framing == "length":
        return [(b"Content-Length", n)], body
    if framing == "short":  # claims less than is sent: the rest looks like a next request
        return [(b"Content-Length", str(max(0, len(body) - 1)).encode())], body
    if framing == "long":  # claims more than is sent: the proxy waits client_read
        return [(b"Content-Length", str(len(body) + 10).encode())], body
    chunked = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    te = [(b"Transfer-Encoding", b"chunked")]
    if framing == "chunked":
        return te, chunked
    if framing == "bad-chunk":
        return te, b"zz\r\n" + body + b"\r\n0\r\n\r\n"
    if framing == "both":
        return [*te, (b"Content-Length", n)], chunked
    return [(b"Content-Length", n), (b"Content-Length", n + b"0")], body


@dataclass(frozen=True)
class RawRequest:
    method: bytes
    target: bytes
    version: bytes
    fields: tuple[tuple[bytes, bytes], ...]
    data: bytes

    @property
    def lacks_host(self) -> bool:
        """An HTTP/1.1 request without Host: RFC 9112 §3.2 requires a 400."""
        names = {n.lower() for n, _ in self.fields}
        return self.version == b"HTTP/1.1" and b"host" not in names


@st.composite
def raw_requests(draw: st.DrawFn, own_authority: str) -> RawRequest:
    method = draw(methods)
    target = draw(targets(own_authority))
    version = draw(versions)
    fields: list[tuple[bytes, bytes]] = []
    if draw(st.integers(0, 9)):  # nearly always a valid Host
        fields.append((b"Host", own_authority.encode()))
    fields += draw(st.lists(st.one_of(valid_fields, _special_field), max_size=6))
    if not draw(st.integers(0, 4)):
        fields.append(draw(_bad_field))
    body = draw(st.binary(max_size=300))
    framing_fields, payload = request_framing(body, draw(st.sampled_from(FRAMINGS)))
    fields += framing_fields
    head = method + b" " + target + b" " + version + b"\r\n" + field_lines(fields) + b"\r\n"
    return RawRequest(method, target, version, tuple(fields), head + payload)


# ------------------------------------------------------------------ responses


@dataclass(frozen=True)
class RawResponse:
    data: bytes
    keep_open: bool  # the upstream leaves the connection open after writing
    valid: bool  # every part valid and framed exactly: must pass through whole
    status: int | None  # the status code when the status line is valid
    body: bytes


_status_lines_valid = st.builds(
    lambda v, code, reason: (v + f" {code} ".encode() + reason, code),
    st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"]),
    st.one_of(st.integers(200, 599), st.sampled_from([200, 201, 204, 301, 304, 404, 500])),
    _ascii(st.text(VCHAR + " ", max_size=20)),
)
_status_lines_bad = st.one_of(
    _ascii(st.text(VCHAR + " ", max_size=30)).map(lambda b: (b, None)),
    st.sampled_from(
        [
            b"HTTP/1.1 2000 OK",
            b"HTTP/1.1 20 OK",
            b"HTTP/1.1 abc OK",
            b"HTTP/9.9 200 OK",
            b"HTTP/1.1  200 OK",
            b"ICY 200 OK",
            b"HTTP/1.1 099 Low",
            b"HTTP/1.1 1000 x",
            b"HTTP/1.1 200 O\x00K",
            b"HTTP/1.1 200",
        ]
    ).map(lambda b: (b, None)),
)
_response_special = st.tuples(
    st.sampled_from(
        [
            b"Content-Type",
            b"Date",
            b"Location",
            b"Retry-After",
            b"ETag",
            b"WWW-Authenticate",
            b"Set-Cookie",
            b"Access-Control-Allow-Origin",
            b"Access-Control-Allow-Credentials",
            b"Allow",
            b"Expires",
            b"Connection",
            b"Content-Encoding",
            b"Vary",
            b"Cache-Control",
            b"traceparent",
        ]
    ),
    st.sampled_from(
        [
            b"application/json",
            b"application/problem+json",
            b"text/html; charset=x",
            b'"quoted"',
            b'W/"x"',
            b"Sun, 06 Nov 1994 08:49:37 GMT",
            b"120",
            b"-1",
            b"*",
            b"true",
            b"TRUE",
            b"GET, POST",
            b"/x?y",
            b"http://[bad",
            b"close",
            b"keep-alive",
            b"gzip",
            b"",
            b'Bearer realm="x"',
            b'realm="x"',
            b",,",
            b"2026-01-01T00:00:00Z",
            b"\xe4\xf6",
        ]
    ),
)
_BODIES = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [b'{"a": 1}', b'{"type": "about:blank", "status": 500}', b"[1, 2", b"<html></html>", b""]
    ),
)


@st.composite
def raw_responses(draw: st.DrawFn) -> RawResponse:
    valid = True
    if draw(st.integers(0, 3)):
        line, status = draw(_status_lines_valid)
    else:
        (line, status), valid = draw(_status_lines_bad), False
    fields = draw(st.lists(st.one_of(valid_fields, _response_special), max_size=5))
    if any(name.lower() in (b"connection", b"content-encoding") for name, _ in fields):
        valid = False  # passes, but need not pass unchanged
    if not draw(st.integers(0, 4)):
        fields.append(draw(_bad_field))
        valid = False
    body = draw(_BODIES)
    framing = draw(
        st.sampled_from(
            [
                "length",
                "length",
                "chunked",
                "close",
                "short",
                "long",
                "bad-chunk",
                "both",
                "two-lengths",
                "chunked-trailer",
            ]
        )
    )
    keep_open = draw(st.integers(0, 5)) == 0
    if status is not None and (status in (204, 304) or status < 200):
        valid = False  # no body allowed: framing rules differ
    if framing == "close":
        framing_fields, payload = [], body
        keep_open = False  # the end of the body is the close
    elif framing == "chunked-trailer":
        framing_fields = [(b"Transfer-Encoding", b"chunked")]
        chunk = f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b""
        payload = chunk + b"0\r\nX-Trailer: 1\r\n\r\n"
    else:
        framing_fields, payload = request_framing(body, framing)
    if framing in ("short", "long", "bad-chunk", "both", "two-lengths"):
        valid = False
    if line.startswith(b"HTTP/1.0") and framing.startswith("chunked"):
        valid = False  # chunked is not HTTP/1.0 framing (RFC 9112 §6.1)
    prefix = b"HTTP/1.1 100 Continue\r\n\r\n" if not draw(st.integers(0, 9)) else b""
    data = prefix + line + b"\r\n" + field_lines(fields + framing_fields) + b"\r\n" + payload
    return RawResponse(data, keep_open, valid, status, body)
