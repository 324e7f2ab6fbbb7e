#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Merges the benchmark CSVs of one run into results.json, a Markdown table (results.md) and a plot of
the GEMV speedup over cuBLAS against the matrix size (gemv_speedup.png, when matplotlib is present).

    report.py OUT_DIR [--no-tinygemm]   (reads OUT_DIR/alu_bound.csv, awq_gemv.csv and tinygemm.csv)

A missing input file is an error (exit 1, naming it), so that no report is made from part of a run;
--no-tinygemm says that the run had no PyTorch, and leaves the tinygemm columns empty.
"""
import csv
import json
import math
import pathlib
import sys


def read(path):
    if not path.exists():
        sys.exit(f"report.py: {path} is missing: the benchmark run did not finish (or pass --no-tinygemm)")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main():
    args = [a for a in sys.argv[1:] if a != "--no-tinygemm"]
    out = pathlib.Path(args[0] if args else ".")
    alu, gemv = read(out / "alu_bound.csv"), read(out / "awq_gemv.csv")
    tiny = [] if "--no-tinygemm" in sys.argv[1:] else read(out / "tinygemm.csv")
    tiny_us = {(r["k"], r["n"], r["batch"]): float(r["tinygemm_us"]) for r in tiny}
    lines = []
    if alu:
        lines += [f"ALU-bound loop ({alu[0]['device']}): values per clock per SM, time relative to dq4", "",
                  "| path | implementation | ms | values/clk/SM | time vs dq4 | mismatches |", "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {r['path']} | {r['implementation']} | {r['ms']} | {r['values_per_clock_per_sm']} | "
                  f"{float(r['time_vs_dq4']):.2f}x | {r['mismatches']} |" for r in alu]
        lines.append("")
    if gemv:
        lines += [f"W4A16 GEMV, AWQ layout, group size 128 ({gemv[0]['device']}; device copy {float(gemv[0]['copy_gbs']):.0f} GB/s)", "",
                  "| format | K x N | batch | dq4 us | cuBLAS us | dq4 speedup | dq4 % of copy | dq4 chained us | chained % of copy "
                  "| tinygemm us | tinygemm time / dq4 time | bulk dequantize % of copy |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in gemv:
            t = tiny_us.get((r["k"], r["n"], r["batch"])) if r["format"] == "bf16" else None
            versus = f"{t / float(r['dq4_gemv_us']):.2f}x" if t else ""
            chained = float(r.get("dq4_chained_us") or "nan")  # nan: no programmatic dependent launch (below sm_90)
            chained_cells = " | " if math.isnan(chained) else f"{chained:.1f} | {100 * float(r['dq4_chained_fraction_of_copy']):.1f}%"
            lines.append(f"| {r['format']} | {r['k']} x {r['n']} | {r['batch']} | {float(r['dq4_gemv_us']):.1f} | "
                         f"{float(r['cublas_us']):.1f} | {float(r['speedup']):.2f}x | {100 * float(r['dq4_fraction_of_copy']):.1f}% | "
                         f"{chained_cells} | {f'{t:.1f}' if t else ''} | {versus} | {100 * float(r['bulk_fraction_of_copy']):.1f}% |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps({"alu_bound": alu, "awq_gemv": gemv, "tinygemm": tiny}, indent=1))
    print("\n".join(lines))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not found: no plot")
        return
    if gemv:
        fig, ax = plt.subplots(figsize=(7, 4))
        for fmt in ("fp16", "bf16"):
            for batch in ("1", "8"):
                rows = sorted((r for r in gemv if r["format"] == fmt and r["batch"] == batch), key=lambda r: int(r["k"]) * int(r["n"]))
                if rows:
                    ax.plot([int(r["k"]) * int(r["n"]) / 1e6 for r in rows], [float(r["speedup"]) for r in rows],
                            marker="o", label=f"dq4 {fmt}, batch {batch} vs cuBLAS")
        bf16 = sorted((r for r in gemv if r["format"] == "bf16" and r["batch"] == "1"), key=lambda r: int(r["k"]) * int(r["n"]))
        points = [(int(r["k"]) * int(r["n"]) / 1e6, float(r["cublas_us"]) / tiny_us[(r["k"], r["n"], "1")])
                  for r in bf16 if (r["k"], r["n"], "1") in tiny_us]
        if points:
            ax.plot(*zip(*points), marker="s", linestyle="--", label="tinygemm bf16, batch 1 vs cuBLAS")
        ax.set_xscale("log")
        ax.set_xlabel("weights (millions, K x N)")
        ax.set_ylabel("speedup over cuBLAS (16-bit weights)")
        ax.set_title(f"W4A16 GEMV, {gemv[0]['device']}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "gemv_speedup.png", dpi=120)
        print(f"plot: {out / 'gemv_speedup.png'}")


if __name__ == "__main__":
    main()
