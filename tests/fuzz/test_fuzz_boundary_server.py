"""Fuzz the query helpers of consortia.server._http with random query strings and headers."""

from __future__ import annotations

import asyncio

from boundary_kit import FAST, MEDIUM, only_consortia_errors
from hypothesis import example, given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from consortia.server._http import after_param, bearer, limit_param, query, read_jose_body

_ALLOWED = ("after", "limit", "member")


def _request(query_string: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> Request:
    return Request(
        {
            "type": "http",
            "query_string": query_string,
            "headers": headers or [],
            "method": "GET",
            "path": "/",
        }
    )


@settings(max_examples=MEDIUM, deadline=None)
@given(
    st.binary(max_size=80)
    | st.lists(
        st.tuples(st.sampled_from([*_ALLOWED, "x", "", "%ff"]), st.text(max_size=10)), max_size=4
    ).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs).encode("utf-8", "surrogatepass"))
)
@example(b"after=%B2")
@example(b"limit=%C2%B2")
@example(b"after=%D9%A1")
def test_query_and_params(query_string: bytes) -> None:
    request = _request(query_string)
    with only_consortia_errors():
        params = query(request, _ALLOWED)
        assert set(params) <= set(_ALLOWED)
        with only_consortia_errors():
            after_param(params.get("after"))
        with only_consortia_errors():
            limit_param(params.get("limit"))


@settings(max_examples=MEDIUM, deadline=None)
@given(st.none() | st.text(max_size=30))
@example("²")
@example("¹²³")
@example("\u0661")
@example("9" * 19)
def test_after_and_limit_params(value: str | None) -> None:
    with only_consortia_errors():
        after = after_param(value)
        assert after >= 0
    with only_consortia_errors():
        limit = limit_param(value)
        assert limit >= 1


@settings(max_examples=FAST, deadline=None)
@given(st.binary(max_size=60))
@example(b"Bearer ")
@example(b"\xff\xfe")
def test_bearer_header(value: bytes) -> None:
    with only_consortia_errors():
        bearer(_request(b"", [(b"authorization", value)]))


@settings(max_examples=FAST, deadline=None)
@given(
    st.binary(max_size=20) | st.sampled_from([b"\xb2", b"1\xb2", b"\xb9", b"12", b"-1", b""]),
    st.sampled_from([b"application/jose", b"application/jose; charset=x", b"text/plain", b""]),
    st.binary(max_size=40),
)
@example(b"\xb2", b"application/jose", b"x")
def test_read_jose_body_headers(length: bytes, media: bytes, body: bytes) -> None:
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    request = Request(
        {
            "type": "http",
            "query_string": b"",
            "headers": [(b"content-type", media), (b"content-length", length)],
            "method": "POST",
            "path": "/",
        },
        receive,
    )
    with only_consortia_errors():
        asyncio.run(read_jose_body(request))
