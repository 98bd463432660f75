"""The cluster's PKI: a CA signs the serving and client certificates; all keys are ECDSA P-256.

The PKI survives `down`, so restarts keep the kubeconfigs that tools already hold; `up` renews
only what is missing or about to expire.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from e2e.support.files import write_private

from .errors import log
from .layout import ADMIN_USER, APISERVER_PORT, CONTEXT_NAME, HOST, SERVICE_CIDR

CERT_DAYS = 3650
RENEW_BEFORE = datetime.timedelta(days=7)
# Two CAs: the cluster CA, and the front-proxy CA that the apiserver's request-header
# authentication trusts (aggregated API servers; also silences the delegated-authn errors that
# controller-manager and scheduler log when it is missing).
CAS = {"ca": "wasmkube-local-ca", "front-proxy-ca": "wasmkube-front-proxy-ca"}
# name -> (signing CA, common name, organisations, kind)
LEAVES: dict[str, tuple[str, str, list[str], str]] = {
    "apiserver": ("ca", "kube-apiserver", [], "server"),
    "admin": ("ca", ADMIN_USER, ["system:masters"], "client"),
    "controller-manager": ("ca", "system:kube-controller-manager", [], "client"),
    "scheduler": ("ca", "system:kube-scheduler", [], "client"),
    # A distinct user name keeps KWOK's status writes apart from the operator's in audit logs.
    "kwok": ("ca", "wasmkube-kwok", ["system:masters"], "client"),
    "front-proxy-client": ("front-proxy-ca", "front-proxy-client", [], "client"),
}
APISERVER_SANS_DNS = [
    "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
]


def _load_pair(pki: Path, name: str) -> tuple[Any, Any] | None:
    """(certificate, key) if both files exist and the certificate is not about to expire."""
    crt, key = pki / f"{name}.crt", pki / f"{name}.key"
    if not (crt.exists() and key.exists()):
        return None
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    if cert.not_valid_after_utc < datetime.datetime.now(datetime.UTC) + RENEW_BEFORE:
        return None
    return cert, serialization.load_pem_private_key(key.read_bytes(), password=None)


def pki_is_current(pki: Path) -> bool:
    """True when every key pair exists and no certificate is about to expire."""
    pairs_ok = all(_load_pair(pki, name) is not None for name in [*CAS, *LEAVES])
    return pairs_ok and (pki / "sa.key").exists() and (pki / "sa.pub").exists()


def ensure_pki(pki: Path) -> None:
    """Create whatever part of the PKI is missing or expiring, and nothing else.

    The PKI survives `down`, so restarts keep the kubeconfigs that tools already hold. A renewed
    CA re-issues every certificate it signed.
    """
    pki.mkdir(parents=True, exist_ok=True)
    signers: dict[str, tuple[Any, Any]] = {}
    renewed: set[str] = set()
    for name, cn in CAS.items():
        pair = _load_pair(pki, name)
        if pair is None:
            log(f"generating {name}")
            key = ec.generate_private_key(ec.SECP256R1())
            pair = (_make_cert(cn, [], key, key, None, kind="ca"), key)
            _save_pair(pki, name, *pair)
            renewed.add(name)
        signers[name] = pair
    for name, (signer, cn, orgs, kind) in LEAVES.items():
        if signer in renewed or _load_pair(pki, name) is None:
            log(f"issuing certificate {name}")
            ca_cert, ca_key = signers[signer]
            key = ec.generate_private_key(ec.SECP256R1())
            _save_pair(pki, name, _make_cert(cn, orgs, key, ca_key, ca_cert, kind=kind), key)
    if not ((pki / "sa.key").exists() and (pki / "sa.pub").exists()):
        _make_service_account_key(pki)


def _make_service_account_key(pki: Path) -> None:
    """The key pair that signs (apiserver, controller-manager) and verifies ServiceAccount tokens."""
    sa_key = ec.generate_private_key(ec.SECP256R1())
    write_private(pki / "sa.key", sa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (pki / "sa.pub").write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def _save_pair(pki: Path, name: str, cert: Any, key: Any) -> None:
    """<name>.crt (public) and <name>.key (owner-only) in PEM, the layout every component reads."""
    write_private(pki / f"{name}.key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (pki / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _make_cert(cn: str, orgs: list[str], key: Any, signer_key: Any, signer: Any, *, kind: str) -> Any:
    """Issue one certificate; kind is "ca", "server" (apiserver SANs) or "client"."""
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in orgs]
    subject = x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer.subject if signer is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    is_ca = kind == "ca"
    builder = builder.add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    builder = builder.add_extension(x509.KeyUsage(
        digital_signature=True, key_encipherment=False, content_commitment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=is_ca, crl_sign=is_ca, encipher_only=False, decipher_only=False,
    ), critical=True)
    if signer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    if kind == "server":
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in APISERVER_SANS_DNS]
        first_service_ip = ipaddress.IPv4Network(SERVICE_CIDR)[1]  # the `kubernetes` Service's IP
        sans += [x509.IPAddress(ipaddress.IPv4Address(HOST)), x509.IPAddress(first_service_ip)]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        usage = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
        builder = builder.add_extension(usage, critical=False)
    elif kind == "client":
        usage = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
        builder = builder.add_extension(usage, critical=False)
    return builder.sign(signer_key, hashes.SHA256())


def pki_fingerprint(pki: Path) -> str:
    """Identifies the PKI generation, so processes started with older certificates get restarted."""
    digest = hashlib.sha256()
    for path in sorted([*pki.glob("*.crt"), pki / "sa.pub"]):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def kubeconfig_for(pki: Path, user: str, server: str = f"https://{HOST}:{APISERVER_PORT}") -> str:
    """A self-contained kubeconfig (certificates embedded) for one of the client certificates."""
    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT_NAME, "cluster": {
            "server": server, "certificate-authority-data": b64(pki / "ca.crt")}}],
        "users": [{"name": LEAVES[user][1], "user": {
            "client-certificate-data": b64(pki / f"{user}.crt"),
            "client-key-data": b64(pki / f"{user}.key")}}],
        "contexts": [{"name": CONTEXT_NAME, "context": {
            "cluster": CONTEXT_NAME, "user": LEAVES[user][1], "namespace": "default"}}],
        "current-context": CONTEXT_NAME,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)
