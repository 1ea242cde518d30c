"""The benchmark (broker/bench, `make bench`) still runs end to end, on a tiny workload, so it
cannot rot between the times someone runs it for figures."""

import json
import subprocess
import sys

import pytest

from harness import REPO_ROOT, tributary_binary

pytestmark = pytest.mark.single_broker("the benchmark starts its own standalone brokers whatever the broker kind: "
                                       "the cluster run would repeat the same run (make bench BENCH_MODE=cluster "
                                       "is the cluster benchmark)")


def test_bench_runs_a_small_workload_against_both_brokers(tmp_path):
    out_json = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "broker" / "bench" / "bench.py"),
         "--broker-bin", str(tributary_binary()),
         "--rounds", "1", "--records", "2000", "--rate", "500", "--latency-seconds", "1",
         "--warmup-seconds", "0.2", "--warmup-records", "1000", "--timeout", "120", "--json", str(out_json)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"bench failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "ours/peer" in proc.stdout
    runs = json.loads(out_json.read_text())
    for kind in ("tributary", "tansu"):
        assert len(runs[kind]) == 1
        r = runs[kind][0]
        warmup = r["warmup"]
        assert 4 <= warmup["parts"] <= 16 and warmup["parts"] % 2 == 0, "at least four parts, ending on acks=all"
        assert warmup["records"] == warmup["parts"] * 249, "the unmeasured warm-up ran first"
        assert r["produce-all"]["records"] == 1999 and r["produce-all"]["recordsPerSec"] > 0
        assert r["produce-1"]["records"] == 1999
        assert r["produce-lz4"]["records"] == 1999 and r["produce-zstd"]["records"] == 1999
        assert r["consume"]["records"] == 4000, "only the uncompressed topic is consumed"
        assert r["latency"]["records"] == 500 and r["latency"]["p99Ms"] is not None
        assert all(r[phase]["brokerCpuMs"] >= 0 for phase in r), "each phase measures the broker's CPU"


def test_tiered_bench_reads_both_topics_and_reports_disk_use(tmp_path):
    out_json = tmp_path / "tiered.json"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "broker" / "bench" / "tiered_bench.py"),
         "--broker-bin", str(tributary_binary()), "--records", "3000", "--record-size", "512",
         "--segment-bytes", "65536", "--rounds", "1", "--timeout", "120", "--json", str(out_json)],
        capture_output=True, text=True, timeout=400,
    )
    assert proc.returncode == 0, f"tiered bench failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "remote/local consume rate" in proc.stdout
    r = json.loads(out_json.read_text())
    for kind in ("local", "tiered"):
        assert [read["records"] for read in r["reads"][kind]] == [3000]
    assert r["disk"]["tiered"] < r["disk"]["local"] / 2, r["disk"]
    assert r["bucketBytes"] > r["disk"]["local"] / 2, r
