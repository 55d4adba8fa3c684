#!/usr/bin/python3
"""Load test for `mamba3rt serve`: N concurrent streaming clients on loopback.

Starts the server (or uses a running one with --url), then runs N client threads for a
bounded time. Each client sends streaming /v1/completions requests one after another, so
new requests keep arriving while others are decoding. Reports aggregate tokens/s, time to
first token and inter-token latency (p50/p99), and the server's RSS over time.

  bench/load_test.py --mamba3rt build/mamba3rt --clients 1,8,64 --seconds 20 [--backend cpu]
      [--model DIR] [--max-tokens 128] [--prompt-tokens 32] [--json out.jsonl]

Only the Python standard library (http.client, threading, multiprocessing): nothing to
install. Clients are spread over several processes, so that the client's own interpreter
lock does not show up as the server's latency.
"""
import argparse
import http.client
import json
import multiprocessing
import os
import random
import re
import subprocess
import sys
import threading
import time


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


class Client(threading.Thread):
    """Sends streaming requests back to back until the deadline; records token times."""

    def __init__(self, host, port, deadline, args, index, vocab):
        super().__init__(daemon=True)
        self.host, self.port, self.deadline, self.args, self.index = host, port, deadline, args, index
        self.rng = random.Random(1000 + index)
        self.vocab = vocab
        self.ttft = []        # seconds, one per request
        self.gaps = []        # seconds between consecutive tokens of one request
        self.token_times = []  # arrival time of every token
        self.requests = 0
        self.errors = 0

    def run(self):
        while time.monotonic() < self.deadline:
            self.one_request()

    def one_request(self):
        a = self.args
        # Token-id prompts work with or without a tokenizer and fix the prompt length.
        prompt = [self.rng.randrange(1, self.vocab) for _ in range(a.prompt_tokens)]
        # Output lengths vary, so requests end and new ones arrive at different times.
        max_tokens = self.rng.randint(a.max_tokens // 2, a.max_tokens)
        body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, "stream": True, "temperature": a.temperature, "top_k": a.top_k,
                           "seed": self.rng.randrange(1 << 30), "ignore_eos": True})
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        start = time.monotonic()
        last = None
        try:
            conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            if resp.status != 200:
                self.errors += 1
                resp.read()
                time.sleep(0.05)
                return
            buf = b""
            while True:
                chunk = resp.read1(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n\n" in buf:
                    event, buf = buf.split(b"\n\n", 1)
                    if not event.startswith(b"data: "):
                        continue  # keep-alive comment
                    data = event[6:]
                    if data == b"[DONE]":
                        continue
                    json.loads(data)  # with ignore_eos every chunk carries one token, the last one too
                    now = time.monotonic()
                    if last is None:
                        self.ttft.append(now - start)
                    else:
                        self.gaps.append(now - last)
                    last = now
                    self.token_times.append(now)
            self.requests += 1
        except (OSError, http.client.HTTPException, ValueError):
            self.errors += 1
        finally:
            conn.close()


def client_group(host, port, deadline, args, indices, vocab, results):
    """One process: the clients `indices` as threads; sends back what they measured."""
    sys.setswitchinterval(0.0002)  # a thread that has a token waiting gets the interpreter soon
    clients = [Client(host, port, deadline, args, i, vocab) for i in indices]
    for c in clients:
        c.start()
    for c in clients:
        c.join(timeout=180)
    results.put({"ttft": [x for c in clients for x in c.ttft], "gaps": [x for c in clients for x in c.gaps],
                 "times": [t for c in clients for t in c.token_times], "requests": sum(c.requests for c in clients),
                 "errors": sum(c.errors for c in clients)})


def server_counters(host, port):
    """(generated tokens, scheduler steps, inter-token histogram {le: cumulative count}) from /metrics."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    values = dict(re.findall(r"^(mamba3rt_[a-z_]+_total) ([0-9.e+]+)$", text, re.M))
    hist = {float(le): float(n) for le, n in
            re.findall(r'^mamba3rt_inter_token_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)$', text, re.M)}
    return (float(values.get("mamba3rt_generated_tokens_total", 0)),
            float(values.get("mamba3rt_scheduler_steps_total", 0)), hist)


def histogram_percentile(before, after, p):
    """p-th percentile (seconds) of the observations between two cumulative histograms,
    interpolated linearly inside the bucket."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0
    if total <= 0:
        return float("nan")
    rank = p / 100.0 * total
    lo_bound, lo_count = 0.0, 0.0
    for b, c in zip(bounds, counts):
        if c >= rank:
            if b == float("inf"):
                return lo_bound
            return lo_bound + (b - lo_bound) * (rank - lo_count) / max(c - lo_count, 1e-12)
        lo_bound, lo_count = b, c
    return bounds[-1]


def run_level(host, port, n_clients, args, server_pid, vocab):
    start = time.monotonic() + args.warmup  # CLOCK_MONOTONIC: the same clock in every process
    deadline = start + args.seconds
    n_procs = max(1, min(n_clients, args.processes))
    results = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=client_group,
                                     args=(host, port, deadline, args, list(range(p, n_clients, n_procs)), vocab,
                                           results))
             for p in range(n_procs)]
    rss = []
    for p in procs:
        p.start()
    while time.monotonic() < start:
        time.sleep(0.01)
    gen0, steps0, hist0 = server_counters(host, port)
    while time.monotonic() < deadline:
        if server_pid:
            rss.append((round(time.monotonic() - start, 1), round(rss_mib(server_pid), 1)))
        time.sleep(args.rss_every)
    gen1, steps1, hist1 = server_counters(host, port)
    groups = [results.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    # Count tokens that arrived inside the measured window (after warm-up, before the deadline).
    tokens = sum(1 for g in groups for t in g["times"] if start <= t <= deadline)
    ttft = [x for g in groups for x in g["ttft"]]
    gaps = [x for g in groups for x in g["gaps"]]
    return {
        "clients": n_clients,
        "client_processes": n_procs,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "seconds": args.seconds,
        "requests": sum(g["requests"] for g in groups),
        "errors": sum(g["errors"] for g in groups),
        "tokens": tokens,
        "tokens_per_s": tokens / args.seconds,
        "server_tokens_per_s": (gen1 - gen0) / args.seconds,
        "mean_batch": (gen1 - gen0) / max(1.0, steps1 - steps0),
        # The same latency measured inside the server (no client-side scheduling noise).
        "server_itl_ms_p50": 1e3 * histogram_percentile(hist0, hist1, 50),
        "server_itl_ms_p99": 1e3 * histogram_percentile(hist0, hist1, 99),
        "ttft_ms_p50": 1e3 * percentile(ttft, 50),
        "ttft_ms_p99": 1e3 * percentile(ttft, 99),
        "itl_ms_p50": 1e3 * percentile(gaps, 50),
        "itl_ms_p99": 1e3 * percentile(gaps, 99),
        "rss_mib": rss,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mamba3rt", default="build/mamba3rt", help="the CLI, to start the server")
    ap.add_argument("--url", help="a running server (http://host:port) instead of starting one")
    ap.add_argument("--model", help="model directory (default: the bundled model)")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--server-args", default="", help="more arguments for mamba3rt serve")
    ap.add_argument("--clients", default="1,8,64", help="comma-separated client counts, one run each")
    ap.add_argument("--seconds", type=float, default=20, help="measured time per level")
    ap.add_argument("--warmup", type=float, default=2, help="seconds of load before measuring")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--prompt-tokens", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=0, help="token ids are drawn below this (default: from the model)")
    ap.add_argument("--temperature", type=float, default=0.8, help="0: greedy")
    ap.add_argument("--top-k", type=int, default=40, help="0: off (sampling then walks the whole vocabulary)")
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 2,
                    help="client processes (default: one per core)")
    ap.add_argument("--rss-every", type=float, default=1.0)
    ap.add_argument("--json", help="append one JSON line per level to this file")
    ap.add_argument("--label", default="", help="free text stored with the results (machine, model)")
    args = ap.parse_args()

    server = None
    pid = None
    if args.url:
        m = re.match(r"https?://([^:/]+):(\d+)", args.url)
        host, port = m.group(1), int(m.group(2))
    else:
        cmd = [args.mamba3rt, "serve", "--port", "0", "--backend", args.backend] + args.server_args.split()
        if args.model:
            cmd += ["--model", args.model]
        server = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        line = server.stdout.readline()
        m = re.search(r"http://([^:]+):(\d+)", line)
        if not m:
            sys.exit(f"the server did not start: {line!r}")
        host, port, pid = m.group(1), int(m.group(2)), server.pid
        print(line.strip(), file=sys.stderr)

    vocab = args.vocab
    if not vocab:
        info_cmd = [args.mamba3rt, "info"] + (["--model", args.model] if args.model else [])
        out = subprocess.run(info_cmd, capture_output=True, text=True).stdout
        m = re.search(r"vocab[^0-9]*(\d+)", out)
        vocab = int(m.group(1)) if m else 256

    results = []
    try:
        for n in [int(x) for x in args.clients.split(",")]:
            r = run_level(host, port, n, args, pid, vocab)
            r["label"] = args.label
            r["backend"] = args.backend
            r["max_tokens"] = args.max_tokens
            r["prompt_tokens"] = args.prompt_tokens
            results.append(r)
            rss = [v for _, v in r["rss_mib"]]
            print(f"clients {n:4d}: {r['tokens_per_s']:9.1f} tok/s (server {r['server_tokens_per_s']:.0f}, "
                  f"mean batch {r['mean_batch']:.1f})  requests {r['requests']:5d}  errors {r['errors']}  "
                  f"TTFT p50 {r['ttft_ms_p50']:7.1f} p99 {r['ttft_ms_p99']:7.1f} ms  "
                  f"ITL p50 {r['itl_ms_p50']:6.2f} p99 {r['itl_ms_p99']:6.2f} ms "
                  f"(server {r['server_itl_ms_p50']:.2f} / {r['server_itl_ms_p99']:.2f})  "
                  f"RSS {min(rss, default=float('nan')):.0f}-{max(rss, default=float('nan')):.0f} MiB", flush=True)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(r) + "\n")
    finally:
        if server:
            server.terminate()
            server.wait(timeout=30)
    if len(results) > 1 and results[0]["clients"] == 1:
        base = results[0]["tokens_per_s"]
        for r in results[1:]:
            print(f"{r['clients']} clients / 1 client throughput: {r['tokens_per_s'] / base:.1f}x; "
                  f"ITL p99/p50: {r['itl_ms_p99'] / r['itl_ms_p50']:.2f} "
                  f"(server-side {r['server_itl_ms_p99'] / r['server_itl_ms_p50']:.2f})")


if __name__ == "__main__":
    main()
