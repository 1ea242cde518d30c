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
