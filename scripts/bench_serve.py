"""Latency of the scoring service at a fixed request rate, over loopback, with a real HTTP client.

Starts `python -m defaultrisk.serving` on a free loopback port, then sends single-customer `/predict`
requests drawn from the real rows of test.csv at a fixed rate (open loop: a request leaves at its
scheduled time whether or not earlier ones have answered), and prints p50/p90/p99 latency, the
achieved rate, the errors and the CPU time per request of the service and of the client. Latency is
counted from each request's scheduled time, so a server that falls behind shows it. The client is
aiohttp's (keep-alive, up to 256 connections): it shares the cores with the service, and costs about
0.6 ms of CPU per request where httpx's cost 4. The last stdout line is one JSON object.

    .venv/bin/python scripts/bench_serve.py --model-dir models/2026-11-24 [--rate 200] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))

from defaultrisk.schema import CATEGORY, FEATURES, FLAG, UUID  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "test.csv"
MAX_SECONDS = 120.0
_JSON = {"content-type": "application/json"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument(
        "--data", default=str(DEFAULT_DATA), help="comma-separated rows (shared/data/test.csv)"
    )
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument(
        "--seconds", type=float, default=20.0, help=f"measured duration, at most {MAX_SECONDS:g}"
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds at the same rate before measuring")
    parser.add_argument("--reason-codes", type=int, default=3)
    parser.add_argument("--reason-rows", choices=("high_risk", "all"), default="high_risk")
    parser.add_argument("--workers", type=int, help="the service's worker processes (default: the service's)")
    args = parser.parse_args(argv)
    if not 0 < args.rate <= 2000 or not 0 < args.seconds <= MAX_SECONDS:
        parser.error(f"--rate must be in (0, 2000] and --seconds in (0, {MAX_SECONDS:g}]")
    return args


def request_bodies(path: str) -> list[bytes]:
    """Each row as the JSON a client sends: numbers as numbers, has_paid a boolean, missing left out."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    bodies = []
    for record in frame.to_dict("records"):
        customer = {UUID: record[UUID]}
        for feature in FEATURES:
            text = record[feature.name]
            if text == "":
                continue
            if feature.kind == CATEGORY:
                customer[feature.name] = text
            elif feature.kind == FLAG:
                customer[feature.name] = text == "True"
            else:
                number = float(text)
                customer[feature.name] = int(number) if number.is_integer() and "." not in text else number
        bodies.append(json.dumps(customer).encode())
    return bodies


def start_service(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "lib")}
    command = [sys.executable, "-m", "defaultrisk.serving", "--model-dir", args.model_dir, "--port", "0"]
    command += ["--reason-codes", str(args.reason_codes), "--reason-rows", args.reason_rows]
    command += ["--workers", str(args.workers)] if args.workers else []
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if not line.startswith("serving http://"):
        process.kill()
        raise SystemExit(f"bench_serve: error: the service did not start ({line.strip()!r})")
    return process, line.split()[1]


async def _one(client: aiohttp.ClientSession, body: bytes, due: float, out: list) -> None:
    try:
        async with client.post("/predict", data=body, headers=_JSON) as answer:
            await answer.read()
            ok = answer.status == 200
    except (aiohttp.ClientError, TimeoutError):
        ok = False
    out.append((time.perf_counter() - due, ok))


async def drive(url: str, bodies: list[bytes], rate: float, seconds: float) -> tuple[list, float]:
    """Send `rate * seconds` requests, request i due at start + i / rate; (latency, ok) per request."""
    total = max(1, round(rate * seconds))
    results: list = []
    connector = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=10.0)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as client:
        start = time.perf_counter() + 0.05
        tasks = []
        # Each request starts at its due time: thousands of requests queued in the client's pool at
        # once would cost the client more than the server, and measure the client.
        for i in range(total):
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(_one(client, bodies[i % len(bodies)], due, results)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return results, elapsed


def summary(results: list, elapsed: float, rate: float) -> dict:
    latencies = np.array([latency for latency, _ in results]) * 1000.0
    p50, p90, p99 = np.percentile(latencies, [50, 90, 99])
    return {
        "requests": len(results),
        "target_rate": rate,
        "achieved_rate": round(sum(ok for _, ok in results) / elapsed, 1),
        "errors": sum(not ok for _, ok in results),
        "p50_ms": round(float(p50), 2),
        "p90_ms": round(float(p90), 2),
        "p99_ms": round(float(p99), 2),
        "max_ms": round(float(latencies.max()), 2),
    }


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process and its descendants (the service's workers) have used so
    far, from Linux /proc; NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = [
            int(child)
            for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()
        ]
    except OSError:
        return float("nan")
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(child) for child in children)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bodies = request_bodies(args.data)
    gc.collect()
    gc.freeze()  # the client's own full collections would stall it, and show as the service's latency
    process, url = start_service(args)
    try:
        if args.warmup > 0:
            asyncio.run(drive(url, bodies, args.rate, args.warmup))
        server_before, client_before = cpu_seconds(process.pid), time.process_time()
        results, elapsed = asyncio.run(drive(url, bodies, args.rate, args.seconds))
        server_cpu, client_cpu = cpu_seconds(process.pid) - server_before, time.process_time() - client_before
    finally:
        process.terminate()
        process.wait(timeout=20)
    figures = {
        **summary(results, elapsed, args.rate),
        # CPU per request on each side: the client shares the two cores with the service.
        "server_cpu_ms_per_request": round(server_cpu * 1000 / max(1, len(results)), 2),
        "client_cpu_ms_per_request": round(client_cpu * 1000 / max(1, len(results)), 2),
        "reason_codes": args.reason_codes,
        "reason_rows": args.reason_rows,
        "cpus": os.cpu_count(),
    }
    print(
        f"{figures['requests']} requests at {args.rate:g}/s: p50 {figures['p50_ms']} ms, "
        f"p90 {figures['p90_ms']} ms, p99 {figures['p99_ms']} ms, "
        f"achieved {figures['achieved_rate']}/s, errors {figures['errors']}",
        file=sys.stderr,
    )
    print(json.dumps(figures))
    return 0 if figures["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
