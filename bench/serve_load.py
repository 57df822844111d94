"""``searchapp serve`` under load: C concurrent clients, each sending N searches over HTTP.

Starts the server on a home (and on ``--database-url`` if given), warms it up, then each client
thread sends its queries one after another (the sample's queries by default, or a BEIR split's),
in the default mode. Prints one JSON object: requests, errors, and p50/p95/p99 milliseconds per
request as the clients saw them, plus the throughput.

    python bench/serve_load.py --home HOME [--database-url URL] [--clients 4] [--queries 50]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("--database-url")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--queries", type=int, default=50, help="per client")
    parser.add_argument("--mode", default="hybrid")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    args = parser.parse_args()

    lines = (REPO / "data" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["query"] for line in lines if line.strip()]
    port = _free_port()
    command = [sys.executable, "-m", "searchapp.cli", "--home", args.home]
    if args.database_url:
        command += ["--database-url", args.database_url]
    command += ["serve", "--port", str(port), "--workers", str(args.workers)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env=dict(os.environ))  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=5).read()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.3)
        for text in texts[:10]:  # warm-up: the model and the vectors are loaded on first use
            urllib.request.urlopen(f"{base}/search?q={urllib.parse.quote(text)}").read()

        times: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def client(number: int) -> None:
            for i in range(args.queries):
                text = texts[(number * args.queries + i) % len(texts)]
                url = f"{base}/search?" + urllib.parse.urlencode({"q": text, "mode": args.mode})
                started = time.perf_counter()
                try:
                    with urllib.request.urlopen(url, timeout=60) as response:
                        ok = response.status == 200 and json.loads(response.read())["results"]
                    problem = "" if ok else "no results"
                except OSError as error:
                    problem = str(error)
                spent = (time.perf_counter() - started) * 1000
                with lock:
                    times.append(spent)
                    if problem:
                        errors.append(problem)

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        p50, p95, p99 = np.percentile(times, [50, 95, 99])
        print(json.dumps({
            "clients": args.clients, "queries_per_client": args.queries, "mode": args.mode,
            "workers": args.workers, "database": "postgresql" if args.database_url else "sqlite",
            "requests": len(times), "errors": len(errors), "first_errors": errors[:3],
            "p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "p99_ms": round(p99, 1),
            "requests_per_second": round(len(times) / wall, 1),
        }, indent=2))  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
