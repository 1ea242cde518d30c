"""Test-time security material: a CA with server and client certificates (and an untrusted
CA's client certificate), an RSA key whose JWKS the broker reads and that signs OAUTHBEARER
tokens, and a broker config with one listener of each security protocol. Everything is made
with the `cryptography` package at test time; nothing secret is committed."""

from __future__ import annotations

import base64
import datetime
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness import free_port

CLIENT_SUBJECT = "CN=client-1,O=Tributary Tests"
"""The mTLS client's principal name as Kafka's DEFAULT mapping rule prints its subject."""

PLAIN_USERS = {"alice": "alice-secret", "admin": "admin-secret"}


def _name(cn: str, org: Optional[str] = None) -> x509.Name:
    attrs = []
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class _Ca:
    def __init__(self, cn: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.name = _name(cn)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name).issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def issue(self, subject: x509.Name, server: bool):
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        )
        if server:
            import ipaddress
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return key, builder.sign(self.key, hashes.SHA256())


@dataclass
class Pki:
    """Paths of the PEM files a test hands to the broker and to clients."""
    dir: Path
    ca: Path
    server: Path          # chain and key, Kafka's PEM keystore
    client_cert: Path
    client_key: Path
    client_pem: Path      # cert and key in one file (kafka-python, Java)
    rogue_cert: Path      # a client certificate of an untrusted CA
    rogue_key: Path
    server_serial: int

    def rotate_server(self, cn: str = "localhost") -> int:
        """Writes a new server certificate (same CA) over the keystore file, as cert-manager
        rotates a Secret; returns its serial number."""
        ca = self._ca
        key, cert = ca.issue(_name(cn, "Rotated"), server=True)
        tmp = self.server.with_suffix(".tmp")
        tmp.write_bytes(_pem_cert(cert) + _pem_key(key))
        tmp.replace(self.server)
        self.server_serial = cert.serial_number
        return cert.serial_number


def make_pki(dir: Path) -> Pki:
    dir.mkdir(parents=True, exist_ok=True)
    ca = _Ca("Tributary Test CA")
    server_key, server_cert = ca.issue(_name("localhost", "Tributary Tests"), server=True)
    client_key, client_cert = ca.issue(_name("client-1", "Tributary Tests"), server=False)
    rogue = _Ca("Rogue CA")
    rogue_key, rogue_cert = rogue.issue(_name("client-1", "Tributary Tests"), server=False)
    files = {
        "ca.pem": _pem_cert(ca.cert),
        "server.pem": _pem_cert(server_cert) + _pem_key(server_key),
        "client.crt": _pem_cert(client_cert),
        "client.key": _pem_key(client_key),
        "client.pem": _pem_cert(client_cert) + _pem_key(client_key),
        "rogue.crt": _pem_cert(rogue_cert),
        "rogue.key": _pem_key(rogue_key),
    }
    for name, data in files.items():
        (dir / name).write_bytes(data)
    pki = Pki(dir, dir / "ca.pem", dir / "server.pem", dir / "client.crt", dir / "client.key",
              dir / "client.pem", dir / "rogue.crt", dir / "rogue.key", server_cert.serial_number)
    pki._ca = ca  # type: ignore[attr-defined]
    return pki


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """An RS256 signing key whose public half is in a JWKS file the broker reads."""

    ISSUER = "https://issuer.tributary.test"
    AUDIENCE = "tributary"

    def __init__(self, dir: Path, kid: str = "test-key") -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = kid
        numbers = self.key.public_key().public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        self.jwks = dir / "jwks.json"
        self.jwks.write_text(json.dumps({"keys": [
            {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": _b64url(n), "e": _b64url(e)}]}))

    def token(self, sub: str = "svc-orders", lifetime_s: int = 300, audience: Optional[str] = None,
              issuer: Optional[str] = None, key=None) -> str:
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        claims = {"sub": sub, "iat": now - 5, "exp": now + lifetime_s,
                  "aud": audience or self.AUDIENCE, "iss": issuer or self.ISSUER}
        signed = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = (key or self.key).sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signed}.{_b64url(signature)}"


@dataclass
class Ports:
    plaintext: int
    ssl: int
    mtls: int
    sasl_ssl: int
    sasl_plaintext: int


def secure_config(path: Path, pki: Pki, issuer: TokenIssuer, ports: Ports,
                  extra: Optional[dict] = None) -> Path:
    """A YAML config with five listeners: PLAINTEXT (where the harness checks readiness),
    SSL, MTLS (SSL with required client certificates, a custom name), SASL_SSL (SCRAM) and
    SASL_PLAINTEXT (PLAIN, SCRAM-SHA-512, OAUTHBEARER)."""
    h = "127.0.0.1"
    users = " ".join(f'user_{u}="{p}"' for u, p in PLAIN_USERS.items())
    security = {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.server),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca),
        "listener.name.mtls.ssl.client.auth": "required",
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512,OAUTHBEARER",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config":
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};",
        "sasl.oauthbearer.jwks.endpoint.url": f"file://{issuer.jwks}",
        "sasl.oauthbearer.expected.audience": TokenIssuer.AUDIENCE,
        "sasl.oauthbearer.expected.issuer": TokenIssuer.ISSUER,
        "authentication.timeout.ms": "3000",
    }
    security.update(extra or {})
    config = {
        "listeners": ",".join([
            f"PLAINTEXT://{h}:{ports.plaintext}", f"SSL://{h}:{ports.ssl}", f"MTLS://{h}:{ports.mtls}",
            f"SASL_SSL://{h}:{ports.sasl_ssl}", f"SASL_PLAINTEXT://{h}:{ports.sasl_plaintext}"]),
        "listener-security-protocol-map":
            "PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL,SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "inter-broker-listener-name": "PLAINTEXT",
        "security": security,
    }
    # YAML is a superset of JSON.
    path.write_text(json.dumps(config, indent=1))
    return path


def free_ports(port: int) -> Ports:
    return Ports(port, free_port(), free_port(), free_port(), free_port())
