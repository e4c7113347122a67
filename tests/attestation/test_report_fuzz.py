"""Property tests: the report parser raises only AttestationFailed, whatever the bytes."""

from __future__ import annotations

import contextlib
import functools

from hypothesis import given, settings
from hypothesis import strategies as st
from snp_vectors import SNP, sample_report

from consortia.attestation import (
    REPORT_SIZE,
    AttestationFailed,
    encode_report,
    parse_report,
    report_from_text,
)


@functools.cache
def _base() -> bytes:
    """The real Milan report when the shared vectors are there, else a synthetic one."""
    path = SNP / "virtee-sev" / "report_milan.hex"
    if path.is_file():
        return bytes.fromhex(path.read_text().strip())
    return encode_report(sample_report())


def _parse_or_refuse(data: bytes) -> None:
    try:
        report = parse_report(data)
    except AttestationFailed as exc:
        assert exc.code == "attestation_failed"
        assert exc.message
    else:
        assert len(data) == REPORT_SIZE
        assert encode_report(report) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2 * REPORT_SIZE))
def test_arbitrary_bytes(data: bytes) -> None:
    _parse_or_refuse(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=REPORT_SIZE, max_size=REPORT_SIZE))
def test_arbitrary_bytes_of_the_right_size(data: bytes) -> None:
    _parse_or_refuse(data)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, REPORT_SIZE - 1), st.integers(0, 255)), min_size=1, max_size=8
    ),
    st.sampled_from([2, 3]),
)
def test_mutated_report(changes: list[tuple[int, int]], version: int) -> None:
    raw = bytearray(_base())
    raw[0] = version
    for offset, value in changes:
        raw[offset] = value
    _parse_or_refuse(bytes(raw))


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=3000), st.binary(max_size=3000)))
def test_report_from_text_anything(data: str | bytes) -> None:
    with contextlib.suppress(AttestationFailed):
        report_from_text(data)
