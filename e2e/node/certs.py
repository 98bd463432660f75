"""The kubelet's identity: a client certificate from the cluster CA, and its kubeconfig."""

from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from e2e.cluster.layout import APISERVER_PORT, HOST
from e2e.support.files import write_if_changed

from .errors import log
from .layout import NODE_NAME
from .paths import NodePaths


def ensure_kubelet_cert(paths: NodePaths) -> None:
    """kubelet's client certificate: CN=system:node:real-node-1, O=system:nodes, from the cluster CA.

    A real node identity (not the admin's) so the Node authorizer and NodeRestriction admission
    apply to this kubelet as on any cluster. Reissued when the cluster CA changes or expiry nears.
    """
    ca_pem = (paths.cluster_pki / "ca.crt").read_bytes()
    crt, key_path, issued_by = paths.pki / "kubelet-client.crt", paths.pki / "kubelet-client.key", paths.pki / "ca.crt"
    if crt.exists() and issued_by.exists() and issued_by.read_bytes() == ca_pem:
        cert = x509.load_pem_x509_certificate(crt.read_bytes())
        if cert.not_valid_after_utc > datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=7):
            return
    log("issuing the kubelet client certificate (system:node:real-node-1)")
    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key((paths.cluster_pki / "ca.key").read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):  # ensure_pki makes every key P-256
        raise TypeError(f"{paths.cluster_pki / 'ca.key'} is not an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{NODE_NAME}")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths.pki.mkdir(parents=True, exist_ok=True)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    write_if_changed(key_path, key_pem.decode(), private=True)
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    issued_by.write_bytes(ca_pem)


def kubelet_kubeconfig(paths: NodePaths) -> str:
    """Self-contained kubeconfig for the kubelet's node identity."""
    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return json.dumps({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "local", "cluster": {
            "server": f"https://{HOST}:{APISERVER_PORT}",
            "certificate-authority-data": b64(paths.cluster_pki / "ca.crt")}}],
        "users": [{"name": NODE_NAME, "user": {
            "client-certificate-data": b64(paths.pki / "kubelet-client.crt"),
            "client-key-data": b64(paths.pki / "kubelet-client.key")}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": NODE_NAME}}],
        "current-context": "local",
    }, indent=2)
