"""``consortia serve``: open a platform in a data folder and serve it over HTTPS.

First start in an empty folder makes what the embedded deployment needs: the platform
(node key, SQLite ledger), a self-signed TLS certificate (its fingerprint is printed for
members to pin) and, unless ``--operator-key`` names one, an operator key pair.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from consortia.attestation import AMD_ARK_SHA256, AttestationFailed, verify_evidence
from consortia.attestation.providers import (
    PlatformProvider,
    SevSnpProvider,
    SimulatedSnpProvider,
    VirtualProvider,
)
from consortia.engine import Platform
from consortia.engine.datadir import OPERATOR_PRIVATE_FILE, OPERATOR_PUBLIC_FILE
from consortia.engine.sequencer import DEFAULT_LEASE_S
from consortia.errors import BadRequest, Unavailable
from consortia.governance.templates import DEFAULT_TEMPLATE
from consortia.identity.keyfile import (
    load_public_jwk,
    save_public_jwk,
    save_signing_key,
)
from consortia.identity.keys import SigningKey, VerifyKey
from consortia.server import Limits, running_platform
from consortia.server.app import Exposure
from consortia.server.run import ServerConfig, serve
from consortia.server.tls import certificate_fingerprint, ensure_self_signed
from consortia.telco import TELCO_TEMPLATE

__all__ = ["OPERATOR_PRIVATE", "OPERATOR_PUBLIC", "add_serve_parser", "serve_command"]

OPERATOR_PRIVATE: Final = OPERATOR_PRIVATE_FILE
OPERATOR_PUBLIC: Final = OPERATOR_PUBLIC_FILE


#: Templates every served platform offers (listed at GET /v1/service).
TEMPLATES = {DEFAULT_TEMPLATE.name: DEFAULT_TEMPLATE, TELCO_TEMPLATE.name: TELCO_TEMPLATE}


def _say(text: str) -> None:
    # Flushed at once: a supervising process (make demo, a test) reads these lines live.
    print(text, flush=True)


def _operator_key(args: argparse.Namespace, data: Path) -> VerifyKey:
    if args.operator_key:
        return VerifyKey.from_jwk(load_public_jwk(Path(args.operator_key)), what="--operator-key")
    public = data / OPERATOR_PUBLIC
    if public.exists():
        _say(f"operator key: trusting {public}")
        return VerifyKey.from_jwk(load_public_jwk(public), what=str(public))
    key = SigningKey.generate()
    save_signing_key(key, data / OPERATOR_PRIVATE)
    save_public_jwk(public, key.public_jwk())
    _say(
        f"operator key: made a new pair; private key {data / OPERATOR_PRIVATE} (mode 0600, "
        f"use it with `consortia consortium create --operator-key`), public key {public}"
    )
    return key.verify_key


def _tls(args: argparse.Namespace, data: Path) -> tuple[Path, Path] | None:
    if args.no_tls:
        print(
            "WARNING: --no-tls: requests, tokens and answers cross the network in the clear; "
            "use this for local development only",
            file=sys.stderr,
            flush=True,
        )
        return None
    if bool(args.tls_cert) != bool(args.tls_key):
        raise BadRequest("give both --tls-cert and --tls-key, or neither (for a self-signed one)")
    if args.tls_cert:
        cert, key = Path(args.tls_cert), Path(args.tls_key)
    else:
        cert, key, made = ensure_self_signed(data, args.host)
        _say(f"TLS: {'made a new' if made else 'using the'} self-signed certificate {cert}")
    try:
        fingerprint = certificate_fingerprint(cert.read_bytes())
    except (OSError, ValueError) as exc:
        raise BadRequest(f"cannot read the TLS certificate {cert}: {exc}") from None
    _say(f"TLS certificate SHA-256 fingerprint: {fingerprint}")
    return cert, key


def _check_own_evidence(provider: SimulatedSnpProvider | SevSnpProvider) -> None:
    """Verify a report of this TEP as a member would (chain, signature, VCEK for this chip
    and TCB), so a missing or wrong certificate fails at start, not at the first member."""
    evidence = provider.evidence(bytes(64))
    roots = dict(AMD_ARK_SHA256)
    if isinstance(provider, SimulatedSnpProvider):
        roots = {"test:simulated": provider.ark_sha256}
    try:
        verify_evidence(
            evidence.report,
            vcek=evidence.vcek_pem.encode("ascii"),
            ask=evidence.ask_pem.encode("ascii"),
            ark=evidence.ark_pem.encode("ascii"),
            now=datetime.now(UTC),
            roots=roots,
        )
    except AttestationFailed as exc:
        raise Unavailable(
            f"this TEP's own evidence does not verify, so no member would accept it: {exc.message}"
        ) from None


def _provider(args: argparse.Namespace, data: Path) -> PlatformProvider:
    """The platform provider ``--platform`` names, and a line saying what it proves."""
    kind = args.platform
    if kind != "virtual" and args.no_tls:
        raise BadRequest(
            f"--platform {kind} binds the TLS certificate into its report, so it needs TLS: "
            "drop --no-tls"
        )
    if kind != "sev-snp" and (args.vcek_file or args.cert_chain_file or args.snp_product):
        raise BadRequest(
            "--vcek-file, --cert-chain-file and --snp-product belong to --platform sev-snp"
        )
    provider: PlatformProvider
    if kind == "virtual":
        provider = VirtualProvider()
        _say("platform: virtual (no hardware protection of data in use; nothing is attested)")
        return provider
    if kind == "simulated-snp":
        provider = SimulatedSnpProvider(data)
    else:
        provider = SevSnpProvider(
            vcek_file=Path(args.vcek_file) if args.vcek_file else None,
            chain_file=Path(args.cert_chain_file) if args.cert_chain_file else None,
            product=args.snp_product or "Milan",
        )
    summary = provider.describe()  # asks the firmware once: fails here, not at a member
    _check_own_evidence(provider)
    tcb = summary.get("tcb")
    tcb_text = ", ".join(f"{k} {v}" for k, v in tcb.items()) if isinstance(tcb, dict) else str(tcb)
    _say(f"platform: {kind}, measurement {summary.get('measurement')}, tcb {tcb_text}")
    if isinstance(provider, SimulatedSnpProvider):
        _say(
            "platform: SIMULATED: reports are signed by the test CA in "
            f"{provider.directory} and prove nothing about the hardware; a member trusts "
            f"them only when told to, by name: --trust-test-root NAME={provider.ark_sha256}"
        )
    return provider


def serve_command(args: argparse.Namespace) -> int:
    """Run the service until SIGTERM; 0 after a clean shutdown."""
    data = Path(args.data)
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    provider = _provider(args, data)
    operator = _operator_key(args, data)
    tls = _tls(args, data)
    config = ServerConfig(
        host=args.host,
        port=args.port,
        tls=tls,
        limits=Limits(
            streams_per_member=args.max_streams_per_member, streams_total=args.max_streams
        ),
        exposure=Exposure(metrics_names=args.metrics_names, metrics_local=args.metrics_local),
        access_log=args.access_log,
        log_level=args.log_level,
        provider=provider,
        advertise=args.advertise,
    )
    if args.node is not None and args.store is None:
        raise BadRequest(
            "--node makes this platform a node of a cluster whose nodes share one PostgreSQL "
            "store: give --store postgresql://... (or CONSORTIA_STORE) too"
        )
    platform = Platform.open(
        data,
        operator_keys=[operator],
        templates=TEMPLATES,
        analytics=not args.no_analytics,
        running=running_platform(provider),
        store=args.store,
        node=args.node,
        lease_s=args.lease_s,
    )
    try:
        return serve(platform, config, on_bound=lambda url: _say(f"consortia: serving {url}"))
    finally:
        platform.close()


def add_serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``serve`` subcommand."""
    serve_p = sub.add_parser("serve", help="serve a platform over HTTPS (PROTOCOL.md)")
    serve_p.add_argument("--data", required=True, metavar="DIR", help="the platform's folder")
    serve_p.add_argument(
        "--store",
        metavar="URL",
        default=os.environ.get("CONSORTIA_STORE"),
        help="keep the ledger in PostgreSQL (postgresql://user@host:port/db, several hosts "
        "allowed; or CONSORTIA_STORE) instead of DIR/ledger.sqlite (the default); only "
        "ciphertext and keyed hashes reach the database, the node key stays in DIR",
    )
    serve_p.add_argument(
        "--node",
        metavar="ID",
        help="this node's id in a cluster of nodes sharing --store, the node key and the TLS "
        "files (docs/cluster.md): it sequences a consortium while it holds its lease and "
        "passes the other consortia's requests on to their sequencers (default: no cluster)",
    )
    serve_p.add_argument(
        "--advertise",
        metavar="URL",
        help="a cluster node's URL as the other nodes reach it (default: the address it "
        "listens on)",
    )
    serve_p.add_argument(
        "--lease-s",
        type=float,
        default=DEFAULT_LEASE_S,
        metavar="S",
        help="seconds a cluster node's sequencer lease lasts, renewed at half; the longest "
        "a consortium waits for a takeover after its sequencer died (default: %(default)s)",
    )
    serve_p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve_p.add_argument(
        "--port", type=int, default=8443, help="port, 0 for any free one (default: %(default)s)"
    )
    serve_p.add_argument(
        "--operator-key",
        metavar="FILE",
        help="the operator's public Ed25519 JWK; default: DIR/operator.pub.jwk, made on "
        "first start together with its private key",
    )
    serve_p.add_argument("--tls-cert", metavar="PEM", help="a real certificate (with --tls-key)")
    serve_p.add_argument("--tls-key", metavar="PEM", help="its private key")
    serve_p.add_argument("--no-tls", action="store_true", help="plain HTTP: development only")
    serve_p.add_argument(
        "--platform",
        choices=["virtual", "sev-snp", "simulated-snp"],
        default="virtual",
        help="what the TEP runs on and attests: virtual (default; nothing attested), sev-snp "
        "(an AMD SEV-SNP confidential VM, through configfs-tsm), simulated-snp (reports "
        "signed by a test CA in DIR/simulated-snp, for tests and demos)",
    )
    serve_p.add_argument(
        "--vcek-file",
        metavar="FILE",
        help="sev-snp: this chip's VCEK (DER or PEM from AMD KDS) when the host supplies none",
    )
    serve_p.add_argument(
        "--cert-chain-file",
        metavar="PEM",
        help="sev-snp: the ASK then the ARK (AMD KDS cert_chain) when the host supplies none",
    )
    serve_p.add_argument(
        "--snp-product",
        choices=["Milan", "Genoa", "Turin"],
        help="sev-snp: the processor, for the AMD KDS addresses an error message gives "
        "(default Milan)",
    )
    serve_p.add_argument(
        "--max-streams",
        type=int,
        default=2000,
        help="open SSE streams in all (default: %(default)s)",
    )
    serve_p.add_argument(
        "--max-streams-per-member",
        type=int,
        default=8,
        help="open SSE streams per member (default: %(default)s)",
    )
    serve_p.add_argument(
        "--access-log",
        action="store_true",
        help="a line per request: method, path without its query, status (default: off)",
    )
    serve_p.add_argument(
        "--no-access-log", action="store_true", help=argparse.SUPPRESS
    )  # the old default's opt-out; off is now the default
    serve_p.add_argument(
        "--metrics-names",
        action="store_true",
        help="let /metrics labels name consortia and actions (default: opaque lane numbers, "
        "no action names)",
    )
    serve_p.add_argument(
        "--metrics-local",
        action="store_true",
        help="let /metrics answer unauthenticated clients on a loopback address, for a local "
        "Prometheus agent (default: an operator-signed bearer token with aud 'metrics')",
    )
    serve_p.add_argument(
        "--no-analytics",
        action="store_true",
        help="no analytics sink and no misuse detection (default: events to "
        "DIR/analytics.duckdb, as each constitution's analytics policy allows)",
    )
    serve_p.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="how much the server logs (default: %(default)s); never keys, names or values",
    )
    serve_p.set_defaults(run=serve_command)
