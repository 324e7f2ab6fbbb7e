#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Counts the instructions per word of Marlin's e2m1 (fp4) dequantization in benchmarks/marlin_probes.cu,
beside dq4's e2m1 paths for the same outputs in the same harness, with tests/sass/check_sass.py's method:
the n2 probe's instructions minus the n1 probe's, leaving out memory and control instructions and the
moves that only put a constant in a register (counted apart, as "const moves" of the n2 probe). A word
is 8 values for the weight paths and 4 scale bytes for Marlin's scale conversions (*_scales rows, which
Marlin runs once per matmul call: one scale word per 2 weight words). No budgets: the numbers are
reported, as markdown tables (every probe pair, then a summary per format).

    count_marlin.py --cuobjdump PATH [--archs 90-real,...] OBJECT...

Reproduce (sm_90):
    nvcc -std=c++17 -O3 -Iinclude -gencode arch=compute_90,code=sm_90 -c benchmarks/marlin_probes.cu -o /tmp/marlin_probes.o
    python3 benchmarks/count_marlin.py --cuobjdump "$(command -v cuobjdump)" --archs 90-real /tmp/marlin_probes.o
(cuobjdump needs nvdisasm on PATH.) Exits 1 when an expected architecture, a probe pair or every probe is
missing, or cuobjdump fails.
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests" / "sass"))
import check_sass  # noqa: E402

# What each probe path runs (marlin_probes.cu states the upstream sequence).
DESCRIPTIONS = {
    ("marlin", "e2m1"): "dequant<.., skip_flop=false>: bits, bias multiply",
    ("marlin", "e2m1_bits"): "dequant<.., skip_flop=true>: bits only (x 2^-14 / 2^-126)",
    ("marlin", "e2m1_scaled"): "NVFP4 as run: bits, group-scale multiply (bias folded)",
    ("marlin", "e2m1_mx_scaled"): "MXFP4 as run: bits, bias multiply, e8m0-scale multiply",
    ("marlin", "e4m3_scales"): "dequant_fp8_scales, S0E5M3 bytes (NVFP4)",
    ("marlin", "e8m0_scales"): "dequant_fp8_scales, e8m0 bytes (MXFP4)",
    ("dq4", "e2m1"): "dequantize<F, e2m1, O>(word)",
    ("dq4", "e2m1_scaled"): "dequantize<F, e2m1, O>(word, scales)",
}


def count(kernels, expected_archs):
    """Returns (rows, errors); a row is a dict with arch, impl, format, path, order, cost, unit, constants, mix."""
    rows = []
    costs, errors = check_sass.marginal_costs(kernels, expected_archs)
    for arch, probe, order, form, sizes, extra, words in costs:
        implementation, fmt, path = probe.split("_", 2)
        rows.append({
            "arch": arch, "impl": implementation, "format": fmt, "path": path, "order": order,
            "cost": sum(extra.values()) / words,
            "unit": "4 scales" if path.endswith("_scales") else "8 values",
            "constants": sizes["n2"].count("CONST"),
            "mix": " ".join(f"{op}:{n / words:g}" for op, n in extra.items()),
        })
    return rows, errors


def table(rows):
    lines = ["| arch | impl | format | path | order | what runs | instructions per word | word | const moves (n2) | opcodes per word |",
             "|---|---|---|---|---|---|---:|---|---:|---|"]
    for r in rows:
        what = DESCRIPTIONS.get((r["impl"], r["path"]), "")
        lines.append(f"| {r['arch']} | {r['impl']} | {r['format']} | {r['path']} | {r['order']} | {what} | "
                     f"{r['cost']:g} | {r['unit']} | {r['constants']} | {r['mix']} |")
    return "\n".join(lines)


def summary(rows):
    """Per architecture and format: Marlin's paths beside dq4's (instructions per 8 values)."""
    by_key = {(r["arch"], r["impl"], r["format"], r["path"], r["order"]): r["cost"] for r in rows}

    def cell(arch, impl, fmt, path, order):
        cost = by_key.get((arch, impl, fmt, path, order))
        return "-" if cost is None else f"{cost:g}"

    lines = ["| arch | format | Marlin unscaled (bias mul) | dq4 unscaled interleaved / sequential | "
             "Marlin scaled (NVFP4, bias folded) | dq4 scaled interleaved / sequential | Marlin MXFP4 (bias + scale mul) | "
             "Marlin bits only |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for arch, fmt in sorted({(r["arch"], r["format"]) for r in rows if r["unit"] == "8 values"},
                            key=lambda k: (int("".join(c for c in k[0] if c.isdigit())), k[1] != "fp16")):
        lines.append(
            f"| {arch} | {fmt} | {cell(arch, 'marlin', fmt, 'e2m1', 'interleaved')} | "
            f"{cell(arch, 'dq4', fmt, 'e2m1', 'interleaved')} / {cell(arch, 'dq4', fmt, 'e2m1', 'sequential')} | "
            f"{cell(arch, 'marlin', fmt, 'e2m1_scaled', 'interleaved')} | "
            f"{cell(arch, 'dq4', fmt, 'e2m1_scaled', 'interleaved')} / {cell(arch, 'dq4', fmt, 'e2m1_scaled', 'sequential')} | "
            f"{cell(arch, 'marlin', fmt, 'e2m1_mx_scaled', 'interleaved')} | "
            f"{cell(arch, 'marlin', fmt, 'e2m1_bits', 'interleaved')} |")
    return "\n".join(lines)


def main():
    probes = check_sass.read_probes(__doc__)
    if probes is None:
        return 1
    rows, errors = count(*probes)
    print(table(rows))
    print()
    print(summary(rows))
    for e in errors:
        print("FAIL: " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
