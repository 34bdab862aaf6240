"""The keys and certificates of a federation across machines (`tllm together certs`).

    DIR/ca.pem            the federation's certificate authority: give it to every peer
    DIR/ca.key            its private key: stays with the coordinator (signs nothing else)
    DIR/server.pem/.key   the SuperLink's TLS certificate (signed by the CA) and key; its
                          names are the given hosts plus localhost and 127.0.0.1, which the
                          coordinator's own ServerApp uses to reach the SuperLink
    DIR/nodes/NAME.key    (--node NAME) a peer's node-authentication key pair: P-384, in the
    DIR/nodes/NAME.pub    OpenSSH format Flower's SuperNode and `flwr supernode register` read

Peers that make their own key pair (`tllm together join` does on first use) send only the
`.pub` file to the coordinator, which is the better practice: a private key never travels.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import TllmError, check_name

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
DAYS = 825  # the longest validity common TLS clients accept for a server certificate


def make_certs(
    folder: Path, hosts: Sequence[str], nodes: Sequence[str] = (), overwrite: bool = False
) -> dict[str, Any]:
    """Write a CA, a server certificate for `hosts` (plus the local names) and one key pair
    per node name into `folder`; returns the paths written."""
    folder = Path(folder).expanduser().resolve()
    for name in nodes:
        check_name(name, "node name")
    names = list(dict.fromkeys([*(h.strip() for h in hosts if h.strip()), *LOCAL_NAMES]))
    targets = [folder / "ca.pem", folder / "ca.key", folder / "server.pem", folder / "server.key"]
    targets += [folder / "nodes" / f"{n}.{ext}" for n in nodes for ext in ("key", "pub")]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not overwrite:
        raise TllmError(
            f"{existing[0]} exists; choose another folder or add --overwrite "
            "(peers holding the old ca.pem would then need the new one)"
        )
    ca_key, ca_cert = _ca()
    server_key, server_cert = _server(ca_key, ca_cert, names)
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "ca.pem", _pem_cert(ca_cert))
    _write(folder / "ca.key", _pem_key(ca_key), private=True)
    _write(folder / "server.pem", _pem_cert(server_cert))
    _write(folder / "server.key", _pem_key(server_key), private=True)
    written: dict[str, Any] = {
        "ca": str(folder / "ca.pem"),
        "server_cert": str(folder / "server.pem"),
        "server_key": str(folder / "server.key"),
        "hosts": names,
        "nodes": {},
    }
    for name in nodes:
        private, public = node_key_pair(folder / "nodes" / f"{name}.key")
        written["nodes"][name] = {"key": str(private), "pub": str(public)}
    return written


def node_key_pair(private_path: Path) -> tuple[Path, Path]:
    """Make (or keep) the node-authentication key pair at `private_path` and `.pub` beside
    it: an EC P-384 key, OpenSSH encoding (what flower-supernode's
    --auth-supernode-private-key loads)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private_path = Path(private_path)
    public_path = private_path.with_suffix(".pub")
    if private_path.is_file() and public_path.is_file():
        return private_path, public_path
    key = ec.generate_private_key(ec.SECP384R1())
    private_path.parent.mkdir(parents=True, exist_ok=True)
    _write(
        private_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ),
        private=True,
    )
    _write(
        public_path,
        key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        + b"\n",
    )
    return private_path, public_path


def read_public_key(path: Path):
    """The EC public key in OpenSSH file `path`, refused with the reason if it is not one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = Path(path).expanduser()
    if not path.is_file():
        raise TllmError(f"no public key file {path}")
    try:
        key = serialization.load_ssh_public_key(path.read_bytes().strip())
    except (ValueError, TypeError) as exc:
        raise TllmError(
            f"{path} is not an OpenSSH public key ({exc}); peers send the .pub "
            "file `tllm together join` printed"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise TllmError(
            f"{path} is not an elliptic-curve (P-384) key: Flower authenticates "
            "SuperNodes with NIST EC keys only"
        )
    return key


def _ca():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Together-LLM federation CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _server(ca_key, ca_cert, names: list[str]):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP384R1())
    alt: list[x509.GeneralName] = []
    for host in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _pem_cert(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, private: bool = False) -> None:
    """Write `data`; a private key is readable by its owner only, from its first byte."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
