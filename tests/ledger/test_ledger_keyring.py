"""Keyed name hashes: the stored format, unchanged by how they are computed or by rotation."""

from __future__ import annotations

import hashlib
import hmac
import threading

from hypothesis import given
from hypothesis import strategies as st

from consortia.ledger.crypto import Keyring


@given(
    st.sampled_from(["key", "member", "nonce", "dir"]),
    st.text(st.characters(exclude_categories=["Cs"])),  # keys are text: no lone surrogates
)
def test_name_hash_is_hmac_sha256_of_domain_nul_name(domain: str, name: str) -> None:
    keyring = Keyring.generate()
    message = domain.encode("utf-8") + b"\x00" + name.encode("utf-8")
    expected = hmac.new(keyring.index_key, message, hashlib.sha256).digest()
    assert keyring.name_hash(domain, name) == expected
    assert keyring.name_hash(domain, name) == expected  # the keyed state is not consumed


def test_name_hashes_agree_across_threads_and_rotation() -> None:
    keyring = Keyring.generate()
    expected = [keyring.name_hash("key", f"order/{n}") for n in range(200)]
    seen: list[list[bytes]] = []

    def work() -> None:
        seen.append([keyring.name_hash("key", f"order/{n}") for n in range(200)])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [expected] * 4
    assert [keyring.rotated().name_hash("key", f"order/{n}") for n in range(200)] == expected
