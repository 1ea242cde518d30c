"""The schema registry binary (target/debug/tributary-schema-registry) as a process of the
client tests: started against a broker's bootstrap list, on a free port, with its own topic."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

from harness import REPO_ROOT, Timeout, free_port, wait_until


def registry_binary(profile: str = "debug") -> Path:
    path = Path(
        os.environ.get(
            "TRIBUTARY_SCHEMA_REGISTRY_BIN", REPO_ROOT / "target" / profile / "tributary-schema-registry"
        )
    )
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `cargo build -p tributary-registry` (or `make build`)")
    return path


class RegistryProcess:
    """One registry process; `restart()` keeps its port and topic, so clients see the same
    registry rebuilt from the topic alone."""

    def __init__(
        self, bootstrap: str, workdir: Path, topic: str, extra_args: tuple[str, ...] = (), ca: Optional[Path] = None
    ) -> None:
        """`extra_args` are more flags; `ca` is the CA of the certificate an HTTPS registry
        (`--tls-cert`) serves."""
        self.bootstrap = bootstrap
        self.extra_args = list(extra_args)
        self.ca = ca
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.topic = topic
        self.port = free_port()
        self.log_path = self.workdir / "registry.log"
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        scheme = "https" if "--tls-cert" in self.extra_args else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            str(registry_binary()),
            "--bootstrap",
            self.bootstrap,
            "--listener",
            f"127.0.0.1:{self.port}",
            "--topic",
            self.topic,
            *self.extra_args,
        ]

    def start(self, timeout: float = 60.0) -> "RegistryProcess":
        env = dict(os.environ, RUST_BACKTRACE="1", NO_COLOR="1")
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"registry exited with {self.proc.returncode}:\n{self.log_tail()}")
            context = ssl.create_default_context(cafile=str(self.ca)) if self.ca else None
            with urllib.request.urlopen(self.url + "/", timeout=2, context=context) as r:
                return r.status == 200 and json.loads(r.read()) == {}

        try:
            wait_until(ready, timeout, f"the schema registry to answer on {self.url}")
        except Timeout as e:
            self.stop()
            raise Timeout(f"{e}\n{self.log_tail()}") from None
        return self

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> "RegistryProcess":
        self.kill()
        return self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no registry log)"


def scram_sha512_document(users: dict[str, str]) -> dict:
    """The cluster's SCRAM credential document (crds/src/scram.rs) for `users` (name: password),
    derived as RFC 5802 does, so the registry checks passwords it never stored."""
    import base64
    import hashlib
    import hmac

    doc = {}
    for user, password in users.items():
        salt, iterations = os.urandom(16), 4096
        salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha512).digest()
        server_key = hmac.new(salted, b"Server Key", hashlib.sha512).digest()
        b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
        doc[user] = {
            "SCRAM-SHA-512": {
                "iterations": iterations,
                "salt": b64(salt),
                "stored_key": b64(hashlib.sha512(client_key).digest()),
                "server_key": b64(server_key),
            }
        }
    return doc


def https_registry_files(dir: Path, users: dict[str, str], authentication: str = "basic") -> tuple[tuple[str, ...], Path]:
    """Writes, into `dir`, a CA, a registry certificate it signed for localhost and 127.0.0.1,
    a client certificate it signed (`client.crt`, `client.key`, CN=broker) and the SCRAM
    credentials of `users`; returns the registry flags serving HTTPS with `authentication`
    (`basic` against those credentials, or `tls`: client certificates of the CA), and the CA
    file clients trust."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    validity = (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1))

    def certificate(subject: str, key, issuer: str, signer, ca: bool):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(validity[0])
            .not_valid_after(validity[1])
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    client_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = certificate("test-ca", ca_key, "test-ca", ca_key, True)
    server_cert = certificate("registry", server_key, "test-ca", ca_key, False)
    client_cert = certificate("broker", client_key, "test-ca", ca_key, False)
    pem = serialization.Encoding.PEM
    dir.mkdir(parents=True, exist_ok=True)
    files = {
        "ca.crt": ca_cert.public_bytes(pem),
        "tls.crt": server_cert.public_bytes(pem),
        "tls.key": server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        "client.crt": client_cert.public_bytes(pem),
        "client.key": client_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        "credentials.json": json.dumps(scram_sha512_document(users)).encode(),
    }
    for name, content in files.items():
        (dir / name).write_bytes(content)
    flags = ("--tls-cert", str(dir / "tls.crt"), "--tls-key", str(dir / "tls.key"), "--authentication", authentication)
    if authentication == "tls":
        flags += ("--tls-client-ca", str(dir / "ca.crt"))
    else:
        flags += ("--scram-credentials", str(dir / "credentials.json"))
    return flags, dir / "ca.crt"
