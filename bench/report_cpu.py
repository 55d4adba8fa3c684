#!/usr/bin/python3
"""Tables (Markdown, on stdout) and the decode plot from bench/cpu_suite.sh results.

usage: bench/report_cpu.py RESULTS.jsonl [MORE.jsonl ...] [--plot docs/img/cpu_decode.svg | --no-plot]
                           [--doc docs/BENCHMARKS.md]

--doc replaces the part of that file between the "<!-- cpu-results:begin -->" and
"<!-- cpu-results:end -->" lines with the tables (which are printed either way).

Later files (and later lines) replace earlier results of the same config and weight type, so a
rerun of a few disturbed runs can be appended. The plot needs matplotlib (Debian:
python3-matplotlib); without it only the tables are printed.
"""
import argparse
import json
import os
import statistics
import sys

# llama.cpp, Mamba-2 130M (129M parameters, random weights), 2 threads, on the project's
# machine (issue #5): decode tok/s per weight type, prefill (512 tokens) tok/s in F16.
LLAMA_PARAMS = 129e6
LLAMA_DECODE = {"f16": ("F16", 94.0), "int8": ("Q8_0", 123.0), "q4": ("Q4_K_M", 159.0)}
LLAMA_PREFILL_F16 = 602.0
# The same runs as fractions of that machine's ceilings (issue #5).
LLAMA_DECODE_F16_ROOFLINE = 0.87
LLAMA_PREFILL_F16_PEAK = 0.74
# What "beating" it means: faster for the float type, 1.3x for the quantized ones.
LLAMA_FACTOR = {"f16": 1.0, "int8": 1.3, "q4": 1.3}
# Targets of issue #5: decode fraction of the memory roofline (187M and 443M), prefill fraction
# of the FMA peak.
DECODE_TARGET = {"bf16": 0.90, "int8": 0.80, "q4": 0.80}
DECODE_TARGET_CONFIGS = ("187m", "443m")
PREFILL_TARGET = 0.75

DTYPE_ORDER = ["f32", "bf16", "f16", "int8", "q4"]
CONFIG_ORDER = ["187m", "443m", "893m", "1.5b"]


def failed_dtype(error):
    """The --dtype of a failed bench run; None for the RSS check (which has none)."""
    args = error.get("args", "").split()
    return args[args.index("--dtype") + 1] if "--dtype" in args[:-1] else None


def load(paths):
    machines, runs, rss, errors = [], {}, None, []
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                rec = json.loads(line)
                kind = rec.get("kind")
                if kind == "machine":
                    machines.append(rec)
                elif kind == "bench":
                    runs[(rec["config"], rec["result"]["dtype"])] = rec
                    # A rerun that succeeded replaces the failure.
                    errors = [e for e in errors if (e.get("config"), failed_dtype(e)) != (rec["config"], rec["result"]["dtype"])]
                elif kind == "rss":
                    rss = rec
                    errors = [e for e in errors if failed_dtype(e) is not None]
                elif kind == "error":
                    errors.append(rec)
    return machines, runs, rss, errors


def order(runs):
    def key(k):
        c, d = k
        return (CONFIG_ORDER.index(c) if c in CONFIG_ORDER else 99, c,
                DTYPE_ORDER.index(d) if d in DTYPE_ORDER else 99)
    return sorted(runs, key=key)


def pct(x):
    return "—" if x is None else f"{100 * x:.0f} %"


def num(x, fmt="{:.1f}"):
    return "—" if x is None else fmt.format(x)


def mark(ok):
    return "yes" if ok else "**no**"


def tables(machines, runs, rss, errors):
    out = []
    machine = machines[0] if machines else None
    results = [r["result"] for r in runs.values()]
    for m in machines:
        if m.get("build_current") == "false":
            out.append(f"**Warning: the binary of the run of {m.get('date')} was older than the sources of its commit.**")
    for m in machines[1:]:
        if (m.get("cpu"), m.get("cpu_family"), m.get("cpu_model")) != (machine.get("cpu"), machine.get("cpu_family"),
                                                                       machine.get("cpu_model")):
            out.append(f"**Warning: results of different CPUs are mixed here** ({m.get('cpu')} family "
                       f"{m.get('cpu_family')} model {m.get('cpu_model')}).")
    bw = statistics.median(r["mem_bw_gbs"] for r in results) if results else None
    fma = statistics.median(r["fma_peak_gflops"] for r in results) if results else None
    if machine:
        core = {("25", "1"): "Zen 3", ("25", "17"): "Zen 4"}.get((machine.get("cpu_family"), machine.get("cpu_model")))
        out.append(f"Machine: {machine.get('cpu')}{' ' + core if core else ''} (family {machine.get('cpu_family')} model "
                   f"{machine.get('cpu_model')}, {machine.get('cores')} cores, L3 {machine.get('l3')}, "
                   f"AVX-512 {'yes' if machine.get('avx512f') else 'no'}), {machine.get('threads')} threads; "
                   f"commit {machine.get('commit', '')[:10]}"
                   + (f" with uncommitted changes in {machine['uncommitted']}" if machine.get("uncommitted") else "")
                   + f"; {machine.get('date')}"
                   + "".join(f"; then commit {m.get('commit', '')[:10]}"
                             + (f" with uncommitted changes in {m['uncommitted']}" if m.get("uncommitted") else "")
                             + f", {m.get('date')}" for m in machines[1:])
                   + ".")
    if results:
        arch = sorted({r.get("kernel_arch", "") for r in results})
        out.append(f"Measured by each run (median over runs): memory read bandwidth **{bw:.1f} GB/s**, "
                   f"fp32 FMA peak **{fma:.0f} GFLOP/s**; kernels: {', '.join(arch)}.")
    walls = [r.get("wall_s") for r in runs.values() if r.get("wall_s") is not None]
    if walls:
        out.append(f"The {len(walls)} runs took {sum(walls) / 60:.1f} min"
                   + (f", the RSS check {rss['wall_s'] / 60:.1f} min" if rss and rss.get("wall_s") is not None else "")
                   + ".")
    out.append("")
    out.append("| config | params | type | weights | prefill tok/s | prefill % FMA peak | decode tok/s | "
               "ms/token p50 | p99 | roofline ms | % of roofline | peak RSS | load avg |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key in order(runs):
        rec = runs[key]
        r = rec["result"]
        out.append(
            f"| {key[0]} | {r['n_params'] / 1e6:.0f}M | {key[1]} | {r['weight_bytes'] / 1e6:.0f} MB | "
            f"{num(r['prefill_tok_s'])} | {pct(r['prefill_fraction_of_peak'])} | {num(r['decode_tok_s'])} | "
            f"{num(r['decode_ms_p50'], '{:.2f}')} | {num(r['decode_ms_p99'], '{:.2f}')} | "
            f"{r['roofline_ms_per_step']:.2f} | {pct(r['roofline_fraction'])} | {r['peak_rss_mb']:.0f} MB | "
            f"{rec.get('loadavg_before', '').split(' ')[0]} |")
    for e in errors:
        out.append(f"\nFailed: {e.get('config')} `{e.get('args')}` (exit {e.get('exit_code')}).")

    out.append("")
    out.append("Targets (issue #5):")
    out.append("")
    out.append("| check | config | type | measured | target | met |")
    out.append("|---|---|---|---|---|---|")
    for key in order(runs):
        c, d = key
        r = runs[key]["result"]
        if d in DECODE_TARGET and c in DECODE_TARGET_CONFIGS and r["roofline_fraction"] is not None:
            t = DECODE_TARGET[d]
            out.append(f"| decode, % of memory roofline | {c} | {d} | {pct(r['roofline_fraction'])} | "
                       f"≥ {t * 100:.0f} % | {mark(r['roofline_fraction'] >= t)} |")
    for key in order(runs):
        c, d = key
        r = runs[key]["result"]
        if r["prefill_fraction_of_peak"] is not None:
            out.append(f"| prefill {r['prompt_tokens']}, % of FMA peak | {c} | {d} | "
                       f"{pct(r['prefill_fraction_of_peak'])} | ≥ {PREFILL_TARGET * 100:.0f} % | "
                       f"{mark(r['prefill_fraction_of_peak'] >= PREFILL_TARGET)} |")
    if rss:
        r = rss["result"]
        growth = r["rss_decode_end_mb"] - r["rss_decode_start_mb"]
        out.append(f"| RSS while decoding {r['gen_tokens']} tokens | {rss['config']} | {r['dtype'] or 'as stored'} | "
                   f"{r['rss_decode_start_mb']:.1f} → {r['rss_decode_end_mb']:.1f} MB (max "
                   f"{r['rss_decode_max_mb']:.1f}) | flat | {mark(r['rss_decode_max_mb'] <= r['rss_decode_start_mb'] + 0.5)} |")

    out.append("")
    out.append("Against llama.cpp (Mamba-2 130M, 129M parameters, 2 threads; numbers from issue #5), ours scaled "
               "to 129M parameters: tok/s × n_params / 129M.")
    out.append("")
    out.append("| config | ours | llama.cpp | ours tok/s | ours at 129M | llama.cpp tok/s | ratio | needed | met |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for key in order(runs):
        c, d = key
        r = runs[key]["result"]
        scale = r["n_params"] / LLAMA_PARAMS
        if d in LLAMA_DECODE and r["decode_tok_s"]:
            name, theirs = LLAMA_DECODE[d]
            ours = r["decode_tok_s"] * scale
            out.append(f"| {c} decode | {d} | {name} | {r['decode_tok_s']:.1f} | {ours:.1f} | {theirs:.0f} | "
                       f"{ours / theirs:.2f}× | {LLAMA_FACTOR[d]:.1f}× | {mark(ours / theirs > LLAMA_FACTOR[d])} |")
    for key in order(runs):
        c, d = key
        r = runs[key]["result"]
        if d == "f16" and r["prefill_tok_s"]:
            ours = r["prefill_tok_s"] * r["n_params"] / LLAMA_PARAMS
            out.append(f"| {c} prefill {r['prompt_tokens']} | f16 | F16 | {r['prefill_tok_s']:.1f} | {ours:.1f} | "
                       f"{LLAMA_PREFILL_F16:.0f} | {ours / LLAMA_PREFILL_F16:.2f}× | 1.0× | "
                       f"{mark(ours > LLAMA_PREFILL_F16)} |")
    out.append("")
    out.append(f"Like for like (fractions of each machine's ceilings; llama.cpp F16: decode "
               f"{LLAMA_DECODE_F16_ROOFLINE * 100:.0f} % of the memory roofline, prefill "
               f"{LLAMA_PREFILL_F16_PEAK * 100:.0f} % of the FMA peak):")
    out.append("")
    out.append("| config | type | decode, % of roofline | llama.cpp F16 | prefill, % of FMA peak | llama.cpp F16 |")
    out.append("|---|---|---|---|---|---|")
    for key in order(runs):
        c, d = key
        r = runs[key]["result"]
        if d in ("f16", "bf16"):
            out.append(f"| {c} | {d} | {pct(r['roofline_fraction'])} | {LLAMA_DECODE_F16_ROOFLINE * 100:.0f} % | "
                       f"{pct(r['prefill_fraction_of_peak'])} | {LLAMA_PREFILL_F16_PEAK * 100:.0f} % |")
    return "\n".join(out), bw


def plot(runs, bw, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        print("report_cpu: matplotlib not installed (apt install python3-matplotlib); no plot", file=sys.stderr)
        return
    plt.rcParams["svg.hashsalt"] = "mamba3rt"  # the same data gives the same file
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colors = {"f32": "tab:gray", "bf16": "tab:blue", "f16": "tab:cyan", "int8": "tab:orange", "q4": "tab:red"}
    for d in DTYPE_ORDER:
        keys = [k for k in order(runs) if k[1] == d and runs[k]["result"]["decode_tok_s"]]
        if not keys:
            continue
        rs = [runs[k]["result"] for k in keys]
        x = [r["n_params"] / 1e6 for r in rs]
        ms = [1e3 / r["decode_tok_s"] for r in rs]
        roof = [r["bytes_per_token"] / (bw * 1e9) * 1e3 for r in rs]
        c = colors.get(d, None)
        ax.plot(x, ms, "o-", color=c, label=f"{d} measured")
        ax.plot(x, roof, "x--", color=c, alpha=0.7, label=f"{d} roofline")
    ax.set_xlabel("parameters (config)")
    ax.set_ylabel("decode ms/token (batch 1, mean)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    sizes = sorted({(runs[k]["result"]["n_params"], k[0]) for k in runs})
    ax.set_xticks([n / 1e6 for n, _ in sizes], [c.upper() for _, c in sizes])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}" if str(v)[0] in "25" else ""))
    ax.set_title(f"Mamba-3 SISO decode on 2 CPU threads (roofline: weights + 2×state at {bw:.1f} GB/s)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None} if path.endswith(".svg") else None)
    print(f"report_cpu: wrote {path}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+")
    ap.add_argument("--plot", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "img",
                                                   "cpu_decode.svg"))
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--doc", help="Markdown file whose results block to replace")
    args = ap.parse_args()
    machines, runs, rss, errors = load(args.results)
    text, bw = tables(machines, runs, rss, errors)
    print(text)
    if args.doc:
        begin, end = "<!-- cpu-results:begin -->", "<!-- cpu-results:end -->"
        with open(args.doc) as f:
            doc = f.read()
        if begin not in doc or end not in doc:
            sys.exit(f"report_cpu: {args.doc} has no {begin} ... {end} block")
        sources = ", ".join(os.path.relpath(p, os.path.dirname(os.path.abspath(args.doc))) for p in args.results)
        block = f"{begin}\n<!-- generated by bench/report_cpu.py from {sources}; do not edit -->\n\n{text}\n\n{end}"
        doc = doc[:doc.index(begin)] + block + doc[doc.index(end) + len(end):]
        with open(args.doc, "w") as f:
            f.write(doc)
        print(f"report_cpu: updated {args.doc}", file=sys.stderr)
    if not args.no_plot and runs and bw:
        plot(runs, bw, os.path.normpath(args.plot))


if __name__ == "__main__":
    main()
