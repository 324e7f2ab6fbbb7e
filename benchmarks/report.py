#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Merges the benchmark CSVs of one run into results.json, a Markdown table (results.md) and a plot of
each GEMV's time over the read floor (gemv_vs_floor.png, when matplotlib is present).

    report.py OUT_DIR [--no-peers]
      reads OUT_DIR/alu_bound.csv, gemv_benchmark.csv, tinygemm.csv and gemlite.csv

A missing input file is an error (exit 1, naming it), so that no report is made from part of a run;
--no-peers says that the run had no PyTorch (or no GemLite), and leaves the peers' columns empty.
"""
import csv
import json
import math
import pathlib
import sys


def read(path):
    if not path.exists():
        sys.exit(f"report.py: {path} is missing: the benchmark run did not finish (or pass --no-peers)")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def by_shape(rows, value):
    return {(r["format"], r["k"], r["n"], r["batch"]): float(r[value]) for r in rows}


def cell(v, digits=1):
    return "" if v is None or math.isnan(v) else f"{v:.{digits}f}"


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    peers = "--no-peers" not in sys.argv[1:]
    out = pathlib.Path(args[0] if args else ".")
    alu, gemv = read(out / "alu_bound.csv"), read(out / "gemv_benchmark.csv")
    tiny = read(out / "tinygemm.csv") if peers else []
    lite = read(out / "gemlite.csv") if peers else []
    tiny_us, lite_us = by_shape(tiny, "tinygemm_us"), by_shape(lite, "gemlite_us")
    ours = by_shape(gemv, "dq4_us")
    lines = []
    if alu:
        lines += [f"ALU-bound loop ({alu[0]['device']}): values per clock per SM, time relative to dq4", "",
                  "| path | implementation | ms | values/clk/SM | time vs dq4 | mismatches |", "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {r['path']} | {r['implementation']} | {r['ms']} | {r['values_per_clock_per_sm']} | "
                  f"{float(r['time_vs_dq4']):.2f}x | {r['mismatches']} |" for r in alu]
        lines.append("")
    shapes = []
    for r in gemv:
        key = (r["k"], r["n"], r["batch"])
        if key not in shapes:
            shapes.append(key)
    if gemv:
        lines += [f"W4A16 GEMV, AWQ layout, group size 128 ({gemv[0]['device']}; us per call, 10 calls back to back)", "",
                  "| K x N | tokens | floor | dq4 fp16 | dq4 bf16 | dq4 / floor | tinygemm bf16 | GemLite fp16 | GemLite bf16 "
                  "| dq4 chained fp16 | cuBLAS fp16 | bulk % of copy (fp16) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        rows = {(r["format"], r["k"], r["n"], r["batch"]): r for r in gemv}
        for k, n, b in shapes:
            f16, b16 = rows.get(("fp16", k, n, b)), rows.get(("bf16", k, n, b))
            floor = float(f16["floor_us"])
            ratio = f"{float(f16['dq4_us']) / floor:.2f}x / {float(b16['dq4_us']) / floor:.2f}x" if b16 else ""
            lines.append(f"| {k} x {n} | {b} | {floor:.1f} | {float(f16['dq4_us']):.1f} | {cell(float(b16['dq4_us']) if b16 else None)} | "
                         f"{ratio} | {cell(tiny_us.get(('bf16', k, n, b)))} | {cell(lite_us.get(('fp16', k, n, b)))} | "
                         f"{cell(lite_us.get(('bf16', k, n, b)))} | {cell(float(f16['dq4_chained_us']))} | "
                         f"{float(f16['cublas_us']):.1f} | {100 * float(f16['bulk_fraction_of_copy']):.1f}% |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps({"alu_bound": alu, "gemv": gemv, "tinygemm": tiny, "gemlite": lite}, indent=1))
    print("\n".join(lines))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not found: no plot")
        return
    if not gemv:
        return
    fig, ax = plt.subplots(figsize=(8, 4.5))
    labels = sorted({(k, n) for k, n, _ in shapes}, key=lambda s: int(s[0]) * int(s[1]))
    x = list(range(len(labels)))
    floors = {(r["k"], r["n"], r["batch"]): float(r["floor_us"]) for r in gemv if r["format"] == "fp16"}
    series = [("dq4 fp16", ours, "fp16", "o"), ("dq4 bf16", ours, "bf16", "o"), ("tinygemm bf16", tiny_us, "bf16", "s"),
              ("GemLite fp16", lite_us, "fp16", "^"), ("GemLite bf16", lite_us, "bf16", "^")]
    for batch, style in (("1", "-"), ("8", "--")):
        for name, table, fmt, marker in series:
            points = [(i, table[(fmt, k, n, batch)] / floors[(k, n, batch)]) for i, (k, n) in enumerate(labels)
                      if (fmt, k, n, batch) in table and (k, n, batch) in floors]
            if points:
                ax.plot(*zip(*points), marker=marker, linestyle=style, label=f"{name}, {batch} token{'s' if batch != '1' else ''}")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{k}x{n}" for k, n in labels], fontsize=8)
    ax.set_ylabel("time / read floor (lower is better)")
    ax.set_title(f"W4A16 GEMV against the read floor, {gemv[0]['device']}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "gemv_vs_floor.png", dpi=120)
    print(f"plot: {out / 'gemv_vs_floor.png'}")


if __name__ == "__main__":
    main()
