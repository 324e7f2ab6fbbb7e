#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks dq4's instruction budgets in the SASS of tests/sass/probes.cu.

For every architecture in the object and every path (encoding, order, 32- or 128-bit form), the cost
per 8 values is the instruction count of the probe_*_n2 kernel minus that of probe_*_n1, divided by
the number of extra words, leaving out memory and control instructions and the moves that only put a
constant in a register (ptxas sometimes re-creates a constant instead of keeping it live; those moves
are counted and reported separately, as "const moves" of the n2 probe). The probes must contain no
conversion instructions at all. Exits 1, with the reason, when a budget is broken, an expected
architecture or probe is missing, or a conversion instruction appears.
"""
import argparse
import collections
import re
import subprocess
import sys

# Per 8 values, by order (the seed's count and CUTLASS's sequential converter's count).
BUDGETS = {"interleaved": 9, "sequential": 12}
# Extra words in the n2 kernel over the n1 kernel, by form.
EXTRA_WORDS = {"w32": 1, "w128": 4}
# Not part of a conversion: memory, constant-bank loads, special registers and control flow.
NOT_COUNTED = {"LDG", "STG", "LDC", "ULDC", "LD", "ST", "LDS", "STS", "LDL", "STL", "S2R", "S2UR",
               "CS2R", "EXIT", "BRA", "NOP", "RET", "BAR"}
CONVERSIONS = re.compile(r"^(I2F|F2F|F2I|I2I|I2FP|F2FP|FRND)")

ARCH = re.compile(r"arch = (sm_\d+[a-z]?)")
FUNCTION = re.compile(r"Function : (\S+)")
INSTRUCTION = re.compile(r"/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P\w+\s+)?([A-Z0-9_]+(?:\.[A-Z0-9_]+)*)([^;]*);")
# A register set to an immediate: MOV R, imm / IMAD.MOV.U32 R, RZ, RZ, imm / HFMA2(.MMA) R, -RZ, RZ, a, b.
CONSTANT_MOVE = re.compile(r"^(MOV|UMOV)\s+U?R\w+,\s*-?(0x[0-9a-f]+|\d)|^IMAD\.MOV\S*\s+R\w+,\s*RZ,\s*RZ,\s*-?(0x[0-9a-f]+|\d)"
                           r"|^HFMA2(\.MMA)?\s+R\w+,\s*-RZ,\s*RZ,")
PROBE = re.compile(r"probe_(\w+?)_(interleaved|sequential)_(w32|w128)_(n1|n2)$")


def parse(sass_text):
    """{arch: {function: [opcode, ...]}} from `cuobjdump -sass` output."""
    kernels = collections.defaultdict(dict)
    arch = function = None
    for line in sass_text.splitlines():
        if m := ARCH.search(line):
            arch, function = m.group(1), None
        elif m := FUNCTION.search(line):
            function = m.group(1)
            kernels[arch][function] = []
        elif function and (m := INSTRUCTION.search(line)):
            opcode, operands = m.group(1), m.group(2).strip()
            kind = "CONST" if CONSTANT_MOVE.match(f"{opcode} {operands}") else opcode
            kernels[arch][function].append(kind)
    return kernels


def counted(opcodes):
    return collections.Counter(op.split(".")[0] for op in opcodes
                               if op.split(".")[0] not in NOT_COUNTED and op != "CONST")


def check(kernels, expected_archs):
    """Returns (rows, errors): rows are (arch, path, cost per 8 values, budget, const moves, opcode mix)."""
    rows, errors = [], []
    for arch in expected_archs:
        if arch not in kernels:
            errors.append(f"{arch}: no SASS for this architecture in the object")
    for arch, functions in sorted(kernels.items(), key=lambda kv: int(re.sub(r"\D", "", kv[0]))):
        pairs = collections.defaultdict(dict)
        for name, opcodes in functions.items():
            m = PROBE.search(name)
            if not m:
                continue
            encoding, order, form, size = m.groups()
            pairs[(encoding, order, form)][size] = opcodes
            bad = sorted({op for op in opcodes if CONVERSIONS.match(op)})
            if bad:
                errors.append(f"{arch} {name}: conversion instructions {', '.join(bad)}")
        if not pairs:
            errors.append(f"{arch}: no probe kernels found")
        for (encoding, order, form), sizes in sorted(pairs.items()):
            path = f"{encoding} {order} {form}"
            if set(sizes) != {"n1", "n2"}:
                errors.append(f"{arch} {path}: probe kernel missing")
                continue
            n1, n2 = counted(sizes["n1"]), counted(sizes["n2"])
            extra = {op: n2[op] - n1[op] for op in sorted(set(n1) | set(n2)) if n2[op] != n1[op]}
            cost = sum(extra.values()) / EXTRA_WORDS[form]
            budget = BUDGETS[order]
            mix = " ".join(f"{op}:{n / EXTRA_WORDS[form]:g}" for op, n in extra.items())
            constants = sizes["n2"].count("CONST")
            rows.append((arch, path, cost, budget, constants, mix))
            if cost > budget:
                errors.append(f"{arch} {path}: {cost:g} instructions per 8 values, budget {budget} ({mix})")
    return rows, errors


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cuobjdump", required=True)
    parser.add_argument("--archs", default="", help="architectures that must be present, e.g. 75-real,90-real")
    parser.add_argument("objects", nargs="+")
    args = parser.parse_args()
    text = ""
    for obj in args.objects:
        result = subprocess.run([args.cuobjdump, "-sass", obj], capture_output=True, text=True)
        if result.returncode != 0:
            print(f"cuobjdump failed on {obj}:\n{result.stderr}", file=sys.stderr)
            return 1
        text += result.stdout
    expected = [f"sm_{a.split('-')[0]}" for a in re.split(r"[,;]", args.archs) if a]
    rows, errors = check(parse(text), expected)
    print(f"{'arch':8} {'path':24} {'per 8':>6} {'budget':>6} {'const moves':>11}  opcodes per 8 values")
    for arch, path, cost, budget, constants, mix in rows:
        print(f"{arch:8} {path:24} {cost:6g} {budget:6} {constants:11}  {mix}")
    for e in errors:
        print("FAIL: " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
