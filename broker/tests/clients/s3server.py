"""An S3-compatible server for the tiered-storage tests: moto in server mode, a real HTTP
process on a free port (the same requests a broker makes to S3 or MinIO), with one bucket."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Optional

import boto3

from harness import free_port, port_accepts, wait_until

ACCESS_KEY = "tributary-test"
SECRET_KEY = "tributary-test-secret"
REGION = "us-east-1"


class S3Server:
    """`python -m moto.server` on 127.0.0.1, its log in `workdir`."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(workdir) / "moto.log"
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 30.0) -> "S3Server":
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT,
        )
        wait_until(lambda: self._running() and port_accepts("127.0.0.1", self.port), timeout,
                   f"the S3 server (moto) on port {self.port}; log: {self.log_path}")
        return self

    def _running(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"moto exited with {self.proc.returncode}: {self.log_path.read_text()}")
        return True

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key under `prefix`."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def broker_settings(server: S3Server, bucket: str, prefix: str) -> dict[str, object]:
    """Broker flags that tier topics into `bucket` on `server`, checked often."""
    return {
        "remote_log_storage_system_enable": True,
        "remote_storage_url": f"s3://{bucket}/{prefix}",
        "remote_storage_endpoint": server.endpoint,
        "remote_storage_region": REGION,
        "remote_storage_path_style": True,
        "remote_storage_access_key_id": ACCESS_KEY,
        "remote_storage_secret_access_key": SECRET_KEY,
        "remote_log_manager_task_interval_ms": 200,
        "log_retention_check_interval_ms": 200,
    }
