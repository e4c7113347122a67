"""Fuzz consortia.ledger.recovery: submissions, holder proofs, shares and stored records."""

from __future__ import annotations

from boundary_kit import (
    FAST,
    MEDIUM,
    b64,
    dumps,
    jose_like,
    json_values,
    member_keys,
    mutations,
    only_consortia_errors,
    signed,
    wild_objects,
    wild_scalars,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consortia._json import JSON
from consortia.identity.box import seal_anonymous
from consortia.ledger.recovery import (
    SHARE_TYP,
    STATUS_TYP,
    RecoveryRecord,
    Share,
    open_share,
    parse_holder_proof,
    parse_submission,
    seal_share,
    sign_holder_proof,
    sign_submission,
)

NOW = 1_700_000_000
_ALICE = member_keys("alice")
_SHARE = Share("c1", 1, 2, 2, bytes(range(32)))
_SUBMISSION = sign_submission(_ALICE, _SHARE)
_PROOF = sign_holder_proof(_ALICE, _SHARE, now=NOW)
_SEALED = seal_share(_ALICE.encryption.public_key, _SHARE)
_RECORD = RecoveryRecord("c1", 1, 2, {1: bytes(32), 2: bytes(32)}, bytes(48)).to_bytes()
_PUBLIC: dict[str, JSON] = dict(_ALICE.signing.public_jwk())

_share_fields = {
    "consortium": st.just("c1") | wild_scalars,
    "epoch": st.just(1) | wild_scalars,
    "x": st.just(2) | wild_scalars,
    "threshold": st.just(2) | wild_scalars,
    "share": st.just(bytes(range(32)).hex()) | wild_scalars,
}
share_docs = st.fixed_dictionaries({}, optional=_share_fields)
claim_docs = st.fixed_dictionaries(
    {},
    optional={
        **_share_fields,
        "member": st.just("alice") | wild_scalars,
        "signing_key": st.just(_PUBLIC) | wild_objects | wild_scalars,
        "iat": st.just(NOW) | wild_scalars,
    },
)


def _valid_claim(**changes: JSON) -> dict[str, JSON]:
    doc: dict[str, JSON] = {
        "consortium": "c1",
        "epoch": 1,
        "x": 2,
        "member": "alice",
        "signing_key": _PUBLIC,
        "iat": NOW,
    }
    return {**doc, **changes}


@settings(max_examples=MEDIUM, deadline=None)
@given(st.text() | jose_like | mutations(_SUBMISSION) | mutations(_PROOF))
def test_submission_and_proof_random(token: str) -> None:
    with only_consortia_errors():
        parse_submission(token)
    with only_consortia_errors():
        parse_holder_proof(token, now=NOW)


@settings(max_examples=MEDIUM, deadline=None)
@given(claim_docs | json_values(wild_scalars), st.sampled_from([SHARE_TYP, STATUS_TYP, None]))
@example(_valid_claim(iat=True), STATUS_TYP)
@example(_valid_claim(epoch=True), STATUS_TYP)
@example(_valid_claim(x=False), STATUS_TYP)
@example({**_valid_claim(), "threshold": 2, "share": "00" * 32, "epoch": True}, SHARE_TYP)
def test_signed_random_claims(payload: JSON, typ: str | None) -> None:
    token = signed(payload, typ=typ)
    with only_consortia_errors():
        parse_submission(token)
    with only_consortia_errors():
        parse_holder_proof(token, now=NOW)


@settings(max_examples=MEDIUM, deadline=None)
@given(share_docs | json_values(wild_scalars))
def test_share_from_json(doc: JSON) -> None:
    with only_consortia_errors():
        Share.from_json(doc)


@settings(max_examples=MEDIUM, deadline=None)
@given(
    st.binary(max_size=200)
    | st.builds(dumps, json_values(wild_scalars)).map(bytes)
    | st.builds(
        dumps,
        st.fixed_dictionaries(
            {},
            optional={
                "cid": wild_scalars,
                "epoch": wild_scalars,
                "threshold": wild_scalars,
                "holders": st.dictionaries(st.text(max_size=6), wild_scalars, max_size=3)
                | wild_scalars,
                "keyring": st.just("00" * 4) | wild_scalars,
                "service": wild_scalars,
            },
        ),
    )
    | mutations(_RECORD.decode()).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
@example(
    b'{"cid":"c","epoch":1,"threshold":1,"holders":{"9' + b"9" * 5000 + b'":"00"},"keyring":""}'
)
def test_recovery_record_from_bytes(data: bytes) -> None:
    with only_consortia_errors():
        RecoveryRecord.from_bytes(data)


@settings(max_examples=FAST, deadline=None)
@given(st.text(max_size=200) | mutations(_SEALED))
def test_open_share_random(sealed: str) -> None:
    with only_consortia_errors():
        open_share(sealed, _ALICE)


@settings(max_examples=FAST, deadline=None)
@given(share_docs | json_values(wild_scalars) | st.binary(max_size=40))
def test_open_share_sealed_random_plaintext(doc: JSON | bytes) -> None:
    plain = doc if isinstance(doc, bytes) else dumps(doc)
    sealed = b64(seal_anonymous(_ALICE.encryption.public_key, plain))
    with only_consortia_errors():
        open_share(sealed, _ALICE)
