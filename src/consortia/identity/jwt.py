"""Bearer tokens for member-authenticated reads (PROTOCOL.md section 4, RFC 7519).

A token is a compact JWS (``alg: EdDSA``, ``kid`` = member id) over the claims ``iss``,
``aud``, ``iat``, ``exp`` and ``jti``. Time is a parameter (``now``), never read from a clock
here, so every edge of the validity window is testable.
"""

from __future__ import annotations

import secrets
from typing import Final

from consortia._json import JSON, canonical, loads_strict
from consortia.errors import BadRequest, StaleRequest
from consortia.identity.jws import ParsedJWS, parse_compact, sign_compact
from consortia.identity.keys import MemberKeys, VerifyKey

__all__ = [
    "DEFAULT_LEEWAY",
    "MAX_LIFETIME",
    "MAX_TOKEN_LENGTH",
    "issue_token",
    "read_token",
    "verify_token",
]

#: Longest validity a token may claim: ``exp - iat`` (PROTOCOL.md section 4).
MAX_LIFETIME: Final = 600
#: Clock skew tolerated between the member's clock and the server's.
DEFAULT_LEEWAY: Final = 60
#: A bearer token is a few hundred characters; anything far larger is not one.
MAX_TOKEN_LENGTH: Final = 8192
_TYP: Final = "JWT"
# RFC 7519 section 5.1 recommends "JWT"; media-type names compare case-insensitively.
_ACCEPTED_TYP: Final = frozenset({"jwt", "application/jwt"})
_MAX_JTI: Final = 256


def issue_token(
    keys: MemberKeys,
    *,
    audience: str,
    now: int,
    lifetime: int = 300,
    jti: str | None = None,
) -> str:
    """A bearer token for ``audience`` (the consortium id) valid from ``now`` for ``lifetime`` s."""
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime <= 0:
        raise BadRequest(f"token lifetime must be a positive integer, got {lifetime!r}")
    if lifetime > MAX_LIFETIME:
        raise BadRequest(f"token lifetime {lifetime} s exceeds the maximum of {MAX_LIFETIME} s")
    if isinstance(now, bool) or not isinstance(now, int):
        raise BadRequest(f"now must be integer seconds, got {now!r}")
    claims: dict[str, JSON] = {
        "iss": keys.member_id,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_hex(16) if jti is None else jti,
    }
    return sign_compact(canonical(claims), keys.signing, kid=keys.member_id, typ=_TYP)


def read_token(token: str) -> ParsedJWS:
    """Parse a bearer token without trusting it, so the caller can look up the key by ``kid``.

    Refuses a JWS whose ``typ`` says it is something else (such as a signed action).
    """
    parsed = parse_compact(token, max_length=MAX_TOKEN_LENGTH)
    typ = parsed.typ
    if typ is not None and typ.lower() not in _ACCEPTED_TYP:
        raise BadRequest(f"bearer token 'typ' must be 'JWT', got {typ!r}")
    return parsed


def _int_claim(claims: dict[str, JSON], name: str) -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"token claim {name!r} must be an integer NumericDate, got {value!r}")
    return value


def _check_audience(aud: JSON, audience: str) -> None:
    # RFC 7519 section 4.1.3: aud is a string or an array of strings naming the recipient.
    if isinstance(aud, str):
        matches = aud == audience
    elif isinstance(aud, list) and aud and all(isinstance(item, str) for item in aud):
        matches = audience in aud
    else:
        raise BadRequest("token claim 'aud' must be a string (the consortium id)")
    if not matches:
        raise BadRequest(f"token is for audience {aud!r}, not {audience!r}")


def verify_token(
    parsed: ParsedJWS,
    key: VerifyKey,
    *,
    audience: str,
    now: int,
    leeway: int = DEFAULT_LEEWAY,
) -> dict[str, JSON]:
    """Verify a bearer token's signature and claims at time ``now``; return the claims.

    Raises BadSignature (signature), BadRequest (ill-formed claims, wrong ``iss``/``aud``,
    lifetime over 600 s) or StaleRequest (expired, or not valid yet).
    """
    if leeway < 0:
        raise BadRequest(f"leeway must not be negative, got {leeway}")
    claims = loads_strict(parsed.verify(key), what="token claims")
    if not isinstance(claims, dict):
        raise BadRequest("token claims must be a JSON object")
    iss = claims.get("iss")
    if not isinstance(iss, str):
        raise BadRequest("token claim 'iss' must be a string (the member id)")
    if iss != parsed.kid:
        raise BadRequest(f"token 'iss' {iss!r} does not match header 'kid' {parsed.kid!r}")
    _check_audience(claims.get("aud"), audience)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= _MAX_JTI:
        raise BadRequest(f"token claim 'jti' must be a string of 1-{_MAX_JTI} characters")
    iat = _int_claim(claims, "iat")
    exp = _int_claim(claims, "exp")
    if exp <= iat:
        raise BadRequest(f"token 'exp' ({exp}) must be after 'iat' ({iat})")
    if exp - iat > MAX_LIFETIME:
        raise BadRequest(
            f"token lifetime exp-iat is {exp - iat} s; the maximum is {MAX_LIFETIME} s"
        )
    if iat > now + leeway:
        raise StaleRequest(
            f"token issued at {iat} is not valid yet (server time {now}, leeway {leeway} s); "
            "check the client's clock"
        )
    if "nbf" in claims and _int_claim(claims, "nbf") > now + leeway:
        raise StaleRequest(f"token is not valid before {claims['nbf']} (server time {now})")
    if now >= exp + leeway:
        raise StaleRequest(f"token expired at {exp} (server time {now}); request a new one")
    return claims
