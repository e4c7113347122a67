"""``consortia attest``: what the TEP at a URL proves, and ``attest verify`` for a saved report.

``consortia attest --url URL`` connects as every member command does (the TLS certificate
read first, ``GET /v1/service`` over a connection pinned to it, its evidence verified
against that certificate and the member's trust) and prints the platform, the measurement,
the TCB, the bound keys and the verdict. Exit 0 when a report vouches for the TEP, 1 when it
is refused or nothing is attested (the virtual platform), 3 when it cannot be reached.

``consortia attest verify REPORT --endorsements CHAIN.pem`` checks a saved report offline
(binary, or hex text), with the VCEK, ASK and ARK in one PEM file: exit 0 when it verifies,
1 with the reason when not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from consortia._json import JSONObject
from consortia.attestation import (
    AMD_ARK_SHA256,
    AttestationFailed,
    AttestationPolicy,
    VerifiedReport,
    load_chain_pem,
    report_from_text,
    verify_evidence,
)
from consortia.cli._input import read_input
from consortia.cli.member import EXIT_REFUSED, EXIT_UNREACHABLE, add_trust_arguments, trust_of
from consortia.client import PinMismatch, ServiceUnreachable
from consortia.client.attest import Attested, parse_test_root
from consortia.client.member import open_service
from consortia.errors import BadRequest, ConsortiaError

__all__ = ["add_attest_parser", "add_service_parser"]

#: A report is 1,184 bytes (2,368 as hex); a chain of three certificates a few KiB.
_MAX_INPUT: Final = 256 * 1024


def _tcb(report: VerifiedReport) -> str:
    return ", ".join(f"{k} {v}" for k, v in report.reported_tcb.to_json().items())


def _report_lines(report: VerifiedReport) -> list[str]:
    return [
        f"product:      {report.product} (root {report.root_name})",
        f"version:      {report.version}",
        f"policy:       0x{report.policy:x} (debug {'ON' if report.debug else 'off'}, "
        f"migration agent {'ON' if report.migrate_ma else 'off'})",
        f"tcb:          {_tcb(report)}",
        f"measurement:  {report.measurement}",
        f"report data:  {report.report_data.hex()}",
        f"chip id:      {report.chip_id}",
    ]


def _fail(args: argparse.Namespace, exc: ConsortiaError) -> None:
    if args.json:
        print(json.dumps({"verdict": "refused", **exc.to_wire()}))
    else:
        print(f"verdict: REFUSED: {exc.code}: {exc.message}", file=sys.stderr)


# -- attest --url --------------------------------------------------------------------------


def _print_attested(attested: Attested) -> None:
    print(f"platform:     {attested.platform}")
    if attested.report is not None:
        for line in _report_lines(attested.report):
            print(line)
        checked = (
            "checked against your trust file"
            if attested.measurement_checked
            else ("NOT checked: no measurements in your trust file")
        )
        print(f"measurement check: {checked}")
    print(f"service key:  {json.dumps(attested.service_key, sort_keys=True)}")
    print(f"encryption:   {json.dumps(attested.encryption_key, sort_keys=True)}")
    if attested.tls_certificate_sha256 is not None:
        print(f"tls cert:     sha256 {attested.tls_certificate_sha256}")
    print(f"verdict:      {attested.summary()}")


async def _attested(args: argparse.Namespace) -> Attested:
    """Connect to ``--url``, attest it under this member's trust, and close."""
    http, _, attested = await open_service(
        args.url,
        fingerprint=args.service_fingerprint,
        insecure=args.insecure,
        trust=trust_of(args),
    )
    await http.aclose()
    return attested


async def _attest_url(args: argparse.Namespace) -> int:
    attested = await _attested(args)
    if args.json:
        doc: JSONObject = {"verdict": "attested" if attested.attested else "not_attested"}
        doc.update(attested.to_json())
        print(json.dumps(doc, sort_keys=True))
    else:
        _print_attested(attested)
    return 0 if attested.attested else EXIT_REFUSED


async def _service(args: argparse.Namespace) -> int:
    attested = await _attested(args)
    # What a member keeps: the keys as attested (or, on a virtual TEP, as published under
    # the pinned certificate); `consortia receipt verify --service-key FILE` reads it.
    doc: JSONObject = {"url": args.url, **attested.to_json()}
    if args.save:
        target = Path(args.save)
        if target.exists() and not args.force:
            raise BadRequest(f"{target} already exists; use --force to replace it")
        target.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(doc, sort_keys=True))
        return 0
    _print_attested(attested)
    if args.save:
        print(f"saved to {args.save}: pass it to `consortia receipt verify --service-key`")
    return 0


def _connected(
    work: Callable[[argparse.Namespace], Coroutine[Any, Any, int]], usage: str
) -> Callable[[argparse.Namespace], int]:
    """A command that attests ``--url`` first: its exit codes, its refusals printed."""

    def run(args: argparse.Namespace) -> int:
        if not args.url:
            print(usage, file=sys.stderr)
            return 2
        try:
            return asyncio.run(work(args))
        except (ServiceUnreachable, PinMismatch) as exc:
            _fail(args, exc)
            return EXIT_UNREACHABLE
        except ConsortiaError as exc:
            _fail(args, exc)
            return EXIT_REFUSED

    return run


_attest_command = _connected(
    _attest_url, "consortia attest: give --url URL (or CONSORTIA_URL), or `attest verify REPORT`"
)


# -- attest verify -------------------------------------------------------------------------


def _verify_offline(args: argparse.Namespace) -> VerifiedReport:
    report = report_from_text(read_input(args.report, "the report", limit=_MAX_INPUT))
    chain = load_chain_pem(read_input(args.endorsements, "the endorsements", limit=_MAX_INPUT))
    if len(chain) != 3:
        raise AttestationFailed(
            f"endorsements: {args.endorsements} holds {len(chain)} certificates; expected "
            "three, the VCEK, the ASK and the ARK, in that order"
        )
    roots = dict(AMD_ARK_SHA256)
    for text in args.trust_test_root:
        name, pin = parse_test_root(text)
        roots[f"test:{name}"] = pin
    measurements = frozenset(m.lower() for m in args.measurement) or frozenset(
        {report.measurement.hex()}
    )
    policy = AttestationPolicy(measurements=measurements, allow_debug=args.allow_debug)
    return verify_evidence(
        report,
        vcek=chain[0],
        ask=chain[1],
        ark=chain[2],
        now=datetime.now(UTC),
        policy=policy,
        roots=roots,
    )


def _verify_command(args: argparse.Namespace) -> int:
    try:
        verified = _verify_offline(args)
    except ConsortiaError as exc:
        _fail(args, exc)
        return EXIT_REFUSED
    if args.json:
        print(
            json.dumps(
                {
                    "verdict": "verified",
                    "measurement_checked": bool(args.measurement),
                    "report": verified.to_json(),
                },
                sort_keys=True,
            )
        )
        return 0
    for line in _report_lines(verified):
        print(line)
    note = "" if args.measurement else " (measurement not checked: give --measurement HEX)"
    kind = "SIMULATED (a test root)" if verified.platform == "simulated-snp" else "AMD SEV-SNP"
    print(
        f"verdict:      verified: {kind} report, signed by the VCEK of chip "
        f"{verified.chip_id[:16]}..., chained to the pinned {verified.root_name} root{note}"
    )
    return 0


def _connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("CONSORTIA_URL"), help="the TEP")
    parser.add_argument(
        "--service-fingerprint",
        default=os.environ.get("CONSORTIA_FINGERPRINT"),
        help="also require this TLS certificate (SHA-256, as `consortia serve` prints)",
    )
    parser.add_argument(
        "--insecure", action="store_true", help="on a virtual TEP, skip TLS verification"
    )
    add_trust_arguments(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def add_service_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``consortia service [--save FILE]``: the TEP's keys, as this member attested them."""
    service = sub.add_parser(
        "service",
        help="the TEP's service keys as attested (or pinned), optionally saved for later checks",
    )
    _connection_arguments(service)
    service.add_argument(
        "--save", metavar="FILE", help="write them as JSON (for receipt verify --service-key)"
    )
    service.add_argument("--force", action="store_true", help="overwrite FILE")
    service.set_defaults(
        run=_connected(_service, "consortia service: give --url URL (or CONSORTIA_URL)")
    )


def add_attest_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``attest`` command and its ``verify`` subcommand."""
    attest = sub.add_parser(
        "attest",
        help="verify what the TEP at --url proves (or a saved report: attest verify)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _connection_arguments(attest)
    attest.set_defaults(run=_attest_command)
    verbs = attest.add_subparsers(dest="attest_command", metavar="verify")
    verify = verbs.add_parser(
        "verify", help="check a saved SEV-SNP report offline against its VCEK, ASK and ARK"
    )
    verify.add_argument("report", metavar="REPORT", help="the report: 1,184 bytes, or hex")
    verify.add_argument(
        "--endorsements",
        required=True,
        metavar="CHAIN.pem",
        help="the VCEK, ASK and ARK certificates, PEM, in that order",
    )
    verify.add_argument(
        "--measurement",
        action="append",
        default=[],
        metavar="HEX",
        help="an accepted launch measurement (96 hex digits); repeat for several",
    )
    verify.add_argument(
        "--allow-debug", action="store_true", help="accept a guest policy that allows debugging"
    )
    verify.add_argument(
        "--trust-test-root",
        metavar="NAME=SHA256",
        action="append",
        default=[],
        help="also accept this test root (a simulated-snp report)",
    )
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    verify.set_defaults(run=_verify_command)
