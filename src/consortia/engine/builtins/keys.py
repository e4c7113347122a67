"""Key material: refreshTrustKeys (a member's own keys) and rotateLedgerSecret.

``refreshTrustKeys`` replaces the caller's signing and encryption keys, given a proof of
possession of the new signing key (a JWS of typ ``KEY_PROOF_TYP`` naming the member, the
consortium and a fresh ``iat``), and tells every active member. ``rotateLedgerSecret`` asks
the engine to rotate the ledger secret at the commit of this batch.
"""

from __future__ import annotations

from dataclasses import replace

from consortia._json import JSON, JSONObject, loads_strict, require_fields
from consortia.engine.builtins.spec import Builtin, CheckContext
from consortia.engine.execution import Execution
from consortia.errors import ActionFailed, ConsortiaError
from consortia.governance.constitution import Constitution, Member
from consortia.identity.jws import parse_compact
from consortia.identity.keys import PublicEncryptionKey, VerifyKey
from consortia.wire import IAT_WINDOW, KEY_PROOF_TYP

__all__ = ["REFRESH_TRUST_KEYS", "ROTATE_LEDGER_SECRET"]


# -- refreshTrustKeys -------------------------------------------------------------------------


def _parse_new_keys(
    c: Constitution, caller: str, params: JSONObject, ctx: CheckContext
) -> tuple[VerifyKey, PublicEncryptionKey]:
    require_fields(params, what="params", required=("signing_key", "encryption_key", "proof"))
    try:
        signing = VerifyKey.from_jwk(params["signing_key"], what="params.signing_key")
        encryption = PublicEncryptionKey.from_jwk(
            params["encryption_key"], what="params.encryption_key"
        )
    except ConsortiaError as exc:
        raise ActionFailed(exc.message) from None
    proof = params["proof"]
    if not isinstance(proof, str):
        raise ActionFailed("params.proof must be a compact JWS signed by the new signing key")
    try:
        parsed = parse_compact(proof)
        if parsed.typ != KEY_PROOF_TYP:
            # Another message the new key signed (an action, a token) is not a proof.
            raise ActionFailed(f"its JWS typ must be {KEY_PROOF_TYP!r}, got {parsed.typ!r}")
        payload = parsed.verify(signing)
        claims = require_fields(
            loads_strict(payload, what="proof payload"),
            what="proof payload",
            required=("member", "consortium", "iat"),
        )
    except ConsortiaError as exc:
        raise ActionFailed(f"proof of possession of the new key failed: {exc.message}") from None
    if claims["member"] != caller or claims["consortium"] != ctx.consortium:
        raise ActionFailed(
            f"proof names member {claims['member']!r} of {claims['consortium']!r}; expected "
            f"{caller!r} of {ctx.consortium!r}"
        )
    iat = claims["iat"]
    if isinstance(iat, bool) or not isinstance(iat, int) or abs(iat - ctx.now) > IAT_WINDOW:
        raise ActionFailed(f"proof iat must be within {IAT_WINDOW} s of now ({ctx.now})")
    member = c.member(caller)
    if signing == member.signing_key:
        raise ActionFailed("the new signing key is the current one; generate a fresh key")
    for other in c.members.values():
        if other.id != caller and other.signing_key == signing:
            raise ActionFailed("that signing key belongs to another member")
    return signing, encryption


def _refresh_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    _parse_new_keys(c, caller, params, ctx)


def _refresh_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    caller = ex.caller()
    signing, encryption = _parse_new_keys(ex.constitution, caller, params, ctx)
    member: Member = replace(
        ex.constitution.member(caller), signing_key=signing, encryption_key=encryption
    )
    ex.stage_member(member)
    body: JSONObject = {
        "member": caller,
        "signing_key": dict(signing.to_jwk()),
        "encryption_key": dict(encryption.to_jwk()),
    }
    for other in ex.constitution.active_ids():
        ex.tell(other, "key_rotated", body)
    return {"member": caller, "signing_key": dict(signing.to_jwk())}


# -- rotateLedgerSecret -----------------------------------------------------------------------


def _rekey_check(c: Constitution, caller: str, params: JSONObject, ctx: CheckContext) -> None:
    require_fields(params, what="params", required=())


def _rekey_run(ex: Execution, params: JSONObject, ctx: CheckContext) -> JSON:
    # The engine rotates at the commit of this batch; records of later batches use the new
    # secret, older ones stay readable under theirs, and recovery shares are re-issued.
    ex.rekey = True
    return {"ledger_secret": "rotated from the next commit on"}


REFRESH_TRUST_KEYS = Builtin(_refresh_check, _refresh_run)
ROTATE_LEDGER_SECRET = Builtin(_rekey_check, _rekey_run)
