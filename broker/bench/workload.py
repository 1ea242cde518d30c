"""The benchmark's Java workload (java/Bench.java) run against a broker or a cluster, and the
small helpers both modes of bench.py report with."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import threading
from pathlib import Path
from typing import Callable, Iterable


def cpu_ms(pid: int) -> float:
    """User plus system CPU time the process has used so far, in ms (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks * 1000.0 / os.sysconf("SC_CLK_TCK")


def run_workload(bootstrap: str, pids: Iterable[int], label: str, log_tail: Callable[[], str], classpath: str,
                 args: argparse.Namespace, phases: str, client_config: Path | None = None) -> list[dict]:
    """Runs the Java workload's `phases` against `bootstrap` and returns each phase's result in
    order. Each result also gets `brokerCpuMs`, the CPU the processes `pids` (the brokers) used
    between the previous phase's end and this one's: a measure of the brokers' cost that other
    load on the machine barely moves, unlike throughput. `label` and `log_tail` name the
    brokers and show their logs when the workload fails. `client_config` is a properties file
    every client of the workload also gets (TLS settings)."""
    pids = list(pids)
    cmd = [
        "java", "-Xms512m", "-Xmx1g", "-cp", classpath, "Bench",
        "--bootstrap", bootstrap,
        "--records", str(args.records),
        "--record-size", str(args.record_size),
        "--partitions", str(args.partitions),
        "--rate", str(args.rate),
        "--seconds", str(args.latency_seconds),
        "--warmup-seconds", str(args.warmup_seconds),
        "--warmup-records", str(args.warmup_records),
        "--phases", phases,
    ]
    if client_config is not None:
        cmd += ["--client-config", str(client_config)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True)
    reader.start()
    timer = threading.Timer(args.timeout, proc.kill)
    timer.start()
    results = []
    lines: list[str] = []
    try:
        last_cpu = sum(cpu_ms(pid) for pid in pids)
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("{"):
                r = json.loads(line)
                now_cpu = sum(cpu_ms(pid) for pid in pids)
                r["brokerCpuMs"] = now_cpu - last_cpu
                last_cpu = now_cpu
                results.append(r)
        proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(5)
    if proc.returncode != 0:
        if proc.returncode == -9:
            raise RuntimeError(f"workload against {label} timed out after {args.timeout:g}s; phases done:\n"
                               f"{''.join(lines)}\nbroker log:\n{log_tail()}")
        text = "\n".join(line.rstrip() for line in stderr if not line.startswith("SLF4J:"))
        raise RuntimeError(f"workload against {label} failed (exit {proc.returncode}):\n{text[-3000:]}\n"
                           f"broker log:\n{log_tail()}")
    return results


def mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def cpu_per_record(result: dict) -> float:
    """Broker CPU microseconds per record of a phase."""
    return result["brokerCpuMs"] * 1000.0 / max(result["records"], 1)
