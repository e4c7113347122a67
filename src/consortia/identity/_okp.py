"""Strict reading of OKP JSON Web Keys (RFC 8037 section 2) for Ed25519 and X25519.

A key arrives from a member's registration, a key file or a JWE ``epk``; all three go through
the parsers here, so a key is refused for the same reasons wherever it appears.
"""

from __future__ import annotations

from typing import Final, Literal

from consortia.errors import BadRequest
from consortia.identity._b64 import b64url_decode, b64url_encode

__all__ = ["KEY_BYTES", "Curve", "okp_jwk", "parse_private_okp", "parse_public_okp"]

Curve = Literal["Ed25519", "X25519"]

#: Both curves use 32-byte public keys and 32-byte private parts (seed or scalar).
KEY_BYTES: Final = 32

# Optional members other tools commonly write; anything else is refused rather than ignored,
# so a key never means more than this code understood.
_USE: Final[dict[str, str]] = {"Ed25519": "sig", "X25519": "enc"}
_ALGS: Final[dict[str, frozenset[str]]] = {
    "Ed25519": frozenset({"EdDSA", "Ed25519"}),
    "X25519": frozenset({"ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A192KW", "ECDH-ES+A256KW"}),
}
_REQUIRED: Final = frozenset({"kty", "crv", "x"})
_OPTIONAL: Final = frozenset({"kid", "use", "alg"})


def okp_jwk(crv: Curve, x: bytes, d: bytes | None = None) -> dict[str, str]:
    """The JWK of an OKP key: public when ``d`` is None, private otherwise."""
    jwk = {"kty": "OKP", "crv": crv, "x": b64url_encode(x)}
    if d is not None:
        jwk["d"] = b64url_encode(d)
    return jwk


def _decode_part(jwk: dict[object, object], name: str, what: str) -> bytes:
    value = jwk.get(name)
    if value is None:
        raise BadRequest(f"{what} has no {name!r} member")
    if not isinstance(value, str):
        raise BadRequest(f"{what}: {name!r} must be a base64url string")
    raw = b64url_decode(value, what=f"{what}.{name}")
    if len(raw) != KEY_BYTES:
        raise BadRequest(f"{what}: {name!r} must decode to {KEY_BYTES} bytes, got {len(raw)}")
    return raw


def _check_optional(jwk: dict[object, object], crv: Curve, what: str) -> None:
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise BadRequest(f"{what}: 'kid' must be a string")
    use = jwk.get("use")
    if use is not None and use != _USE[crv]:
        raise BadRequest(f"{what}: 'use' must be {_USE[crv]!r} for a {crv} key, got {use!r}")
    alg = jwk.get("alg")
    # isinstance first: a list or object "alg" is unhashable, and `in` a frozenset would raise.
    if alg is not None and (not isinstance(alg, str) or alg not in _ALGS[crv]):
        expected = ", ".join(sorted(_ALGS[crv]))
        raise BadRequest(f"{what}: 'alg' {alg!r} does not fit a {crv} key (expected {expected})")


def _check_jwk(jwk: object, *, crv: Curve, private: bool, what: str) -> dict[object, object]:
    if not isinstance(jwk, dict):
        raise BadRequest(f"{what} must be a JSON object (a JWK), got {type(jwk).__name__}")
    if not private and "d" in jwk:
        # A private key pasted where a public one belongs is refused, never silently stripped.
        raise BadRequest(
            f"{what} contains the private part 'd'; publish only the public key "
            "(kty, crv, x) and keep 'd' secret"
        )
    allowed = _REQUIRED | _OPTIONAL | ({"d"} if private else set())
    unknown = sorted(str(name) for name in jwk if name not in allowed)
    if unknown:
        raise BadRequest(f"{what} has unsupported members {unknown}")
    kty = jwk.get("kty")
    if kty != "OKP":
        raise BadRequest(f"{what}: 'kty' must be 'OKP', got {kty!r}")
    got_crv = jwk.get("crv")
    if got_crv != crv:
        raise BadRequest(f"{what}: 'crv' must be {crv!r}, got {got_crv!r}")
    _check_optional(jwk, crv, what)
    return jwk


def parse_public_okp(jwk: object, *, crv: Curve, what: str) -> bytes:
    """Validate a public OKP JWK of curve ``crv``; return ``x``.

    Raises :class:`BadRequest` saying what was wrong, including when ``d`` is present.
    """
    checked = _check_jwk(jwk, crv=crv, private=False, what=what)
    return _decode_part(checked, "x", what)


def parse_private_okp(jwk: object, *, crv: Curve, what: str) -> tuple[bytes, bytes]:
    """Validate a private OKP JWK of curve ``crv``; return ``(x, d)``.

    The caller checks that ``x`` is the public key of ``d``.
    """
    checked = _check_jwk(jwk, crv=crv, private=True, what=what)
    return _decode_part(checked, "x", what), _decode_part(checked, "d", what)
