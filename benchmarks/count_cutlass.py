#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Counts the instructions per 8 values of CUTLASS's converters in benchmarks/cutlass_probes.cu, beside
dq4's paths for the same conversions in the same harness, with tests/sass/check_sass.py's method: the
n2 probe's instructions minus the n1 probe's, leaving out memory and control instructions (check_sass's
list, plus the convergence-barrier and warp-sync instructions of branching code) and the moves that
only put a constant in a register (counted apart, as "const moves" of the n2 probe). No budgets: the
numbers are reported. Conversion instructions (F2FP, I2F, ...) are counted like any other; "branches"
is the n2 probe's BRA count minus the n1 probe's (nonzero: the static count is not what runs).

    count_cutlass.py --cuobjdump PATH [--archs 90-real,...] OBJECT...

Reproduce (sm_90; the CUTLASS headers of the pip package nvidia-cutlass):
    CUTLASS=$(python3 -c "import cutlass_library, os; print(os.path.join(os.path.dirname(cutlass_library.__file__), 'source', 'include'))")
    nvcc -std=c++17 -O3 -arch=sm_90 -Iinclude -I"$CUTLASS" -c benchmarks/cutlass_probes.cu -o /tmp/cutlass_probes.o
    python3 benchmarks/count_cutlass.py --cuobjdump "$(command -v cuobjdump)" /tmp/cutlass_probes.o
(cuobjdump needs nvdisasm on PATH.) Exits 1 when an expected architecture, a probe pair or every
probe is missing, or cuobjdump fails.
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests" / "sass"))
import check_sass  # noqa: E402

# Control instructions of branching code that check_sass.NOT_COUNTED does not list (dq4's probes have none).
CONTROL = {"BSSY", "BSYNC", "BREAK", "WARPSYNC", "BMOV", "CALL", "YIELD"}


def counted(opcodes):
    c = check_sass.counted(opcodes)
    for op in CONTROL:
        c.pop(op, None)
    return c


def count(kernels, expected_archs):
    """Returns (rows, errors): rows are (arch, implementation, path, per 8, const moves, branches, mix)."""
    rows = []
    costs, errors = check_sass.marginal_costs(kernels, expected_archs)
    for arch, probe, order, form, sizes, extra, words in costs:
        implementation, path = probe.split("_", 1)
        branches = (sum(op.startswith("BRA") for op in sizes["n2"]) - sum(op.startswith("BRA") for op in sizes["n1"])) / words
        mix = " ".join(f"{op}:{n / words:g}" for op, n in extra.items())
        rows.append((arch, implementation, f"{path.replace('_', ' ')} {order}", sum(extra.values()) / words,
                     sizes["n2"].count("CONST"), branches, mix))
    return rows, errors


def main():
    probes = check_sass.read_probes(__doc__)
    if probes is None:
        return 1
    rows, errors = count(*probes)
    print(f"{'arch':8} {'impl':8} {'path':22} {'per 8':>6} {'const moves':>11} {'branches':>8}  opcodes per 8 values")
    for arch, implementation, path, cost, constants, branches, mix in rows:
        print(f"{arch:8} {implementation:8} {path:22} {cost:6g} {constants:11} {branches:8g}  {mix}")
    for e in errors:
        print("FAIL: " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
