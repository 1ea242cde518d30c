"""The suite's own harness, where its correctness is not shown by the tests that use it."""

import pytest

from harness import PORT_BLOCK_BASE, PORT_BLOCK_SIZE, port_block_index


@pytest.mark.same_on_cluster("the suite's port allocation itself: no broker is involved")
def test_the_standalone_and_cluster_passes_workers_take_disjoint_port_blocks():
    # `make test` runs the standalone pass (3 workers) and the cluster pass (2) at once; a
    # shared block once let the cluster pass's registry find its port taken by the other pass.
    workers = [f"gw{i}" for i in range(4)]
    blocks = [port_block_index(kind, w) for kind in ("tributary", "cluster") for w in workers]
    assert len(set(blocks)) == len(blocks), blocks
    assert all(PORT_BLOCK_BASE + (b + 1) * PORT_BLOCK_SIZE <= 32768 for b in blocks), blocks
    assert port_block_index("cluster", "") is None
