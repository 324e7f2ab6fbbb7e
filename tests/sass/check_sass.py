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

# Instructions per 8 values, by format, path kind and order (interleaved, sequential). Kinds: the
# integer encodings unscaled ("int"), e2m1 unscaled, scaled (+1 multiply per register), zero point.
BUDGETS = {
    ("fp16", "int"): (9, 12), ("fp16", "e2m1"): (14, 13),
    ("fp16", "int_scaled"): (13, 16), ("fp16", "e2m1_scaled"): (18, 17), ("fp16", "zero_point"): (13, 16),
    ("bf16", "int"): (11, 13), ("bf16", "e2m1"): (16, 15),
    ("bf16", "int_scaled"): (15, 17), ("bf16", "e2m1_scaled"): (20, 19), ("bf16", "zero_point"): (15, 17),
    ("fp32", "int"): (17, 17), ("fp32", "int_scaled"): (25, 25), ("fp32", "zero_point"): (25, 25),
    # q - z unscaled: the unscaled path's count (the add subtracts 2^(M-o) + z instead of 2^(M-o)).
    ("fp16", "difference"): (9, 12), ("bf16", "difference"): (11, 13), ("fp32", "difference"): (17, 17),
    # 8-bit outputs, by source: u4, the signed encodings (u4b8, s4), e2m1, q - z, e2m1 with an e8m0 scale.
    ("int8", "u4"): (3, 5), ("int8", "signed"): (6, 7), ("int8", "difference"): (7, 9),
    ("e4m3", "u4"): (9, 9), ("e4m3", "signed"): (11, 11), ("e4m3", "e2m1"): (9, 9), ("e4m3", "difference"): (22, 22),
    ("e4m3", "e2m1_block_scaled"): (9, 9), ("e5m2", "e2m1"): (9, 9),
    # e2m1 to fp32 (the bf16 look-up widened) and MXFP4 (e8m0 block scales in the tables: no multiply).
    ("fp32", "e2m1"): (24, 23), ("fp32", "e2m1_scaled"): (32, 31),
    ("fp16", "e2m1_block_scaled"): (16, 15), ("bf16", "e2m1_block_scaled"): (16, 15),
    ("fp32", "e2m1_block_scaled"): (24, 23),
    # 16-entry codebooks (NF4): two table halves per byte plane; scaled: one multiply per register.
    ("fp16", "codebook"): (22, 21), ("bf16", "codebook"): (22, 21),
    ("fp16", "codebook_scaled"): (26, 25), ("bf16", "codebook_scaled"): (26, 25),
}
EIGHT_BIT = {"int8", "e4m3", "e5m2"}
# sm_75 has no bf16 arithmetic: unscaled bf16 runs the fp32 path plus one PRMT per register, e2m1,
# MXFP4 and codebooks (integer instructions only) the same paths as elsewhere, q - z bf16 adds through fp32 (each lane
# widened, one FADD per lane, one PRMT per register), and bf16 with scales the reference (reported, no
# budget).
SM75_BF16 = {"int": (21, 21), "e2m1": BUDGETS[("bf16", "e2m1")], "difference": (27, 29),
             "e2m1_block_scaled": BUDGETS[("bf16", "e2m1_block_scaled")], "codebook": BUDGETS[("bf16", "codebook")]}
ZERO_POINTS = {"awq", "gptq_v1", "gptq_v1_wrap", "gptq_v1_no_wrap", "gptq_v2"}


def budget(arch, path):
    """Budget per 8 values for a probe path such as 'bf16_u4b8_scaled' in an order, or None."""
    fmt, rest = path.split("_", 1)
    if rest.endswith("_prepare"):
        return None  # once per group: reported, not budgeted
    if rest in ZERO_POINTS:
        kind = "zero_point"
    elif rest.endswith("_difference") and rest[: -len("_difference")] in ZERO_POINTS:
        kind = "difference"
    elif rest.startswith("e2m1") or rest.startswith("codebook"):
        kind = rest
    elif fmt in EIGHT_BIT:
        kind = "u4" if rest == "u4" else "signed"
    else:
        kind = "int_scaled" if rest.endswith("_scaled") else "int"
    if fmt == "bf16" and arch == "sm_75" and kind not in SM75_BF16:
        return None  # the reference runs (no bf16 arithmetic to multiply with)
    limits = SM75_BF16.get(kind) if fmt == "bf16" and arch == "sm_75" else BUDGETS.get((fmt, kind))
    if limits is None:
        raise KeyError(f"no budget for probe path {path} ({fmt}, {kind})")
    return limits
# Extra words in the n2 kernel over the n1 kernel, by form.
EXTRA_WORDS = {"w32": 1, "w128": 4}
# Not part of a conversion: memory, constant-bank loads, special registers and control flow.
NOT_COUNTED = {"LDG", "STG", "LDC", "ULDC", "LD", "ST", "LDS", "STS", "LDL", "STL", "S2R", "S2UR",
               "CS2R", "EXIT", "BRA", "NOP", "RET", "BAR"}
CONVERSIONS = re.compile(r"^(I2F|F2F|F2I|I2I|I2FP|F2FP|FRND)")
# Preparations whose conversions are their point: NVFP4's s_F = round(s * g) and bitsandbytes' table
# times absmax rounded to fp32, then to the output format.
CONVERTING_PREPARATIONS = {"nvfp4_prepare", "bitsandbytes_prepare"}

ARCH = re.compile(r"arch = (sm_\d+[a-z]?)")
FUNCTION = re.compile(r"Function : (\S+)")
INSTRUCTION = re.compile(r"/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P\w+\s+)?([A-Z0-9_]+(?:\.[A-Z0-9_]+)*)([^;]*);")
# A register set to an immediate (MOV R, imm / IMAD.MOV.U32 R, RZ, RZ, imm / HFMA2(.MMA) R, -RZ, RZ, a, b)
# or copied from a uniform register (MOV R, UR / IMAD.U32 R, RZ, RZ, UR): ptxas re-creates a table
# constant that way after an instruction overwrote its register.
CONSTANT_MOVE = re.compile(r"^(MOV|UMOV)\s+U?R\w+,\s*-?(0x[0-9a-f]+|\d|UR\w+)"
                           r"|^IMAD(\.MOV)?\.U32\s+R\w+,\s*RZ,\s*RZ,\s*-?(0x[0-9a-f]+|\d|UR\w+)"
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


def probe_pairs(functions):
    """{(path, order, form): {"n1": opcodes, "n2": opcodes}} of one architecture's probe kernels."""
    pairs = collections.defaultdict(dict)
    for name, opcodes in functions.items():
        if m := PROBE.search(name):
            path, order, form, size = m.groups()
            pairs[(path, order, form)][size] = opcodes
    return pairs


def by_architecture(kernels):
    """The architectures of a parsed listing in numeric order (sm_75 before sm_100)."""
    return sorted(kernels.items(), key=lambda kv: int(re.sub(r"\D", "", kv[0])))


def marginal_costs(kernels, expected_archs):
    """(costs, errors): a cost is (arch, probe, order, form, sizes, extra, words) for every complete probe
    pair, `extra` the opcodes the n2 probe has beyond the n1 probe (counted ones only) and `words` how many
    more words it converts; the errors name missing architectures, probe kernels and pairs."""
    costs, errors = [], []
    for arch in expected_archs:
        if arch not in kernels:
            errors.append(f"{arch}: no SASS for this architecture in the object")
    for arch, functions in by_architecture(kernels):
        pairs = probe_pairs(functions)
        if not pairs:
            errors.append(f"{arch}: no probe kernels found")
        for (probe, order, form), sizes in sorted(pairs.items()):
            if set(sizes) != {"n1", "n2"}:
                errors.append(f"{arch} {probe} {order} {form}: probe kernel missing")
                continue
            n1, n2 = counted(sizes["n1"]), counted(sizes["n2"])
            extra = {op: n2[op] - n1[op] for op in sorted(set(n1) | set(n2)) if n2[op] != n1[op]}
            costs.append((arch, probe, order, form, sizes, extra, EXTRA_WORDS[form]))
    return costs, errors


def check(kernels, expected_archs):
    """Returns (rows, errors): rows are (arch, path, cost per 8 values, budget, const moves, opcode mix)."""
    rows = []
    costs, errors = marginal_costs(kernels, expected_archs)
    for arch, name, order, form, sizes, extra, words in costs:
        path = f"{name} {order} {form}"
        if name.split("_", 1)[1] not in CONVERTING_PREPARATIONS:
            bad = sorted({op for opcodes in sizes.values() for op in opcodes if CONVERSIONS.match(op)})
            if bad:
                errors.append(f"{arch} {name}: conversion instructions {', '.join(bad)}")
        cost = sum(extra.values()) / words
        try:
            limits = budget(arch, name)
        except KeyError as e:
            errors.append(f"{arch} {path}: {e.args[0]}")
            continue
        budget_for_order = None if limits is None else limits[0 if order == "interleaved" else 1]
        mix = " ".join(f"{op}:{n / words:g}" for op, n in extra.items())
        constants = sizes["n2"].count("CONST")
        rows.append((arch, path, cost, budget_for_order, constants, mix))
        if budget_for_order is not None and cost > budget_for_order:
            errors.append(f"{arch} {path}: {cost:g} instructions per 8 values, budget {budget_for_order} ({mix})")
    return rows, errors


def read_sass(cuobjdump, objects):
    """The `cuobjdump -sass` listing of every object, or None (with the reason printed) if one fails."""
    text = ""
    for obj in objects:
        result = subprocess.run([cuobjdump, "-sass", obj], capture_output=True, text=True)
        if result.returncode != 0:
            print(f"cuobjdump failed on {obj}:\n{result.stderr}", file=sys.stderr)
            return None
        text += result.stdout
    return text


def architectures(spec):
    """['sm_75', 'sm_90'] from a CMake architecture list such as '75-real,90-real' (',' or ';')."""
    return [f"sm_{a.split('-')[0]}" for a in re.split(r"[,;]", spec) if a]


def read_probes(description):
    """The command line of check_sass.py and the counting scripts (--cuobjdump, --archs, objects): the
    parsed kernels of the objects and the architectures that must be present, or None if cuobjdump failed."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuobjdump", required=True)
    parser.add_argument("--archs", default="", help="architectures that must be present, e.g. 75-real,90-real")
    parser.add_argument("objects", nargs="+")
    args = parser.parse_args()
    text = read_sass(args.cuobjdump, args.objects)
    return None if text is None else (parse(text), architectures(args.archs))


def main():
    probes = read_probes(__doc__)
    if probes is None:
        return 1
    rows, errors = check(*probes)
    print(f"{'arch':8} {'path':34} {'per 8':>6} {'budget':>9} {'const moves':>11}  opcodes per 8 values")
    for arch, path, cost, limit, constants, mix in rows:
        shown = "reference" if limit is None else str(limit)
        mix = "(reference: no fast path on this target)" if limit is None else mix
        print(f"{arch:8} {path:34} {cost:6g} {shown:>9} {constants:11}  {mix}")
    for e in errors:
        print("FAIL: " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
