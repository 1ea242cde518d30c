"""The schema registry with the npm client `@kafkajs/confluent-schema-registry` (what Node.js
services use), its records carried through the broker by kafkajs: Avro, JSON Schema and
Protobuf registered, encoded, produced, consumed and decoded; a compatible evolution accepted
and an incompatible one refused with 409. The script is node/schema_registry.js; the packages
are pinned in node/package-lock.json and installed by .ci/install-tools.sh."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid

from harness import CLIENTS_DIR
from registryproc import RegistryProcess

NODE_DIR = CLIENTS_DIR / "node"


def test_the_kafkajs_registry_client_registers_encodes_and_decodes_through_the_broker(
        broker_factory, tmp_path, topic):
    node = shutil.which("node")
    assert node, "node is not installed: run .ci/install-tools.sh"
    assert (NODE_DIR / "node_modules" / "@kafkajs" / "confluent-schema-registry").is_dir(), \
        "the npm packages are not installed: run .ci/install-tools.sh"
    broker = broker_factory()
    registry = RegistryProcess(broker.bootstrap, tmp_path / "registry", f"_schemas-{uuid.uuid4().hex[:8]}").start()
    try:
        proc = subprocess.run([node, "schema_registry.js", registry.url, broker.bootstrap, topic],
                              cwd=NODE_DIR, capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, f"node client failed:\n{proc.stderr[-3000:]}\nregistry log:\n{registry.log_tail()}"
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["consumed"] == 4
        assert result["refused"] == 409
        assert len({result["avroId"], result["jsonId"], result["protoId"], result["v2Id"]}) == 4
    finally:
        registry.stop()
