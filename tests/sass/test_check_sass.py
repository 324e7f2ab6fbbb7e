#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The SASS checker can fail: synthetic listings that break a budget, convert, or lack a target."""
import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import check_sass  # noqa: E402


def listing(arch, kernels):
    """A cuobjdump-like listing: kernels maps a name to its opcode lines."""
    lines = [f"\tarch = {arch}"]
    for name, body in kernels.items():
        lines.append(f"\t\tFunction : {name}")
        for i, instruction in enumerate(["LDC R1, c[0x0][0x28]", "LDG.E R2, desc[UR4][R2.64]"] + body + ["EXIT"]):
            lines.append(f"        /*{16 * i:04x}*/                   {instruction} ;   /* 0x0 */")
    return "\n".join(lines)


ONE_WORD = ["MOV R0, 0x64006400", "SHF.R.U32.HI R3, RZ, 0x8, R2"] + \
    ["LOP3.LUT R4, R2, 0xf000f, R0, 0x6a, !PT"] * 4 + ["HADD2 R5, R4, -1024, -1024"] * 4
TWO_WORDS = ONE_WORD + ONE_WORD[1:]


def probes(one, two):
    return {"probe_fp16_u4_interleaved_w32_n1": one, "probe_fp16_u4_interleaved_w32_n2": two}


class CheckSass(unittest.TestCase):
    def test_nine_instructions_pass_and_constants_are_not_counted(self):
        rows, errors = check_sass.check(check_sass.parse(listing("sm_90", probes(ONE_WORD, TWO_WORDS))), ["sm_90"])
        self.assertEqual(errors, [])
        self.assertEqual(rows[0][2], 9)
        self.assertEqual(rows[0][4], 1)  # the one constant move

    def test_a_path_without_a_budget_fails(self):
        unknown = {"probe_int8_e2m1_sequential_w32_n1": ONE_WORD, "probe_int8_e2m1_sequential_w32_n2": TWO_WORDS}
        _, errors = check_sass.check(check_sass.parse(listing("sm_90", unknown)), ["sm_90"])
        self.assertEqual(len(errors), 1)
        self.assertIn("no budget", errors[0])

    def test_eight_bit_budgets_by_source(self):
        self.assertEqual(check_sass.budget("sm_90", "int8_u4"), (3, 5))
        self.assertEqual(check_sass.budget("sm_90", "int8_s4"), (6, 7))
        self.assertEqual(check_sass.budget("sm_90", "int8_awq_difference"), (7, 9))
        self.assertEqual(check_sass.budget("sm_90", "e4m3_e2m1_block_scaled"), (9, 9))
        self.assertEqual(check_sass.budget("sm_75", "bf16_awq_difference"), (27, 29))
        self.assertIsNone(check_sass.budget("sm_75", "bf16_awq"))
        self.assertIsNone(check_sass.budget("sm_90", "int8_awq_prepare"))

    def test_a_tenth_instruction_fails(self):
        slower = TWO_WORDS + ["LOP3.LUT R9, R2, 0xf, R0, 0x6a, !PT"]
        _, errors = check_sass.check(check_sass.parse(listing("sm_90", probes(ONE_WORD, slower))), ["sm_90"])
        self.assertTrue(any("10 instructions per 8 values, budget 9" in e for e in errors), errors)

    def test_a_conversion_instruction_fails(self):
        converting = ONE_WORD + ["I2F.F16 R7, R6"]
        _, errors = check_sass.check(check_sass.parse(listing("sm_90", probes(converting, TWO_WORDS))), ["sm_90"])
        self.assertTrue(any("conversion instructions I2F.F16" in e for e in errors), errors)

    def test_budgets_follow_format_path_and_order(self):
        self.assertEqual(check_sass.budget("sm_90", "bf16_s4"), (11, 13))
        self.assertEqual(check_sass.budget("sm_90", "fp16_gptq_v1"), (13, 16))
        self.assertEqual(check_sass.budget("sm_90", "bf16_gptq_v1_no_wrap"), (15, 17))
        self.assertEqual(check_sass.budget("sm_90", "fp32_gptq_v1_wrap"), (25, 25))
        self.assertEqual(check_sass.budget("sm_90", "bf16_e2m1_scaled"), (20, 19))
        self.assertEqual(check_sass.budget("sm_75", "bf16_u4"), (21, 21))
        self.assertIsNone(check_sass.budget("sm_75", "bf16_awq"))  # the reference runs there

    def test_a_copy_from_a_uniform_register_is_a_constant_move(self):
        rows, errors = check_sass.check(check_sass.parse(listing("sm_90", probes(
            ONE_WORD, TWO_WORDS + ["IMAD.U32 R9, RZ, RZ, UR6", "MOV R10, UR7"]))), ["sm_90"])
        self.assertEqual(errors, [])
        self.assertEqual(rows[0][2], 9)
        self.assertEqual(rows[0][4], 3)

    def test_a_missing_architecture_or_probe_fails(self):
        parsed = check_sass.parse(listing("sm_90", {"probe_fp16_u4_interleaved_w32_n1": ONE_WORD}))
        _, errors = check_sass.check(parsed, ["sm_90", "sm_120"])
        self.assertTrue(any("sm_120: no SASS" in e for e in errors), errors)
        self.assertTrue(any("probe kernel missing" in e for e in errors), errors)


if __name__ == "__main__":
    unittest.main()
