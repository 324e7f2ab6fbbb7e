# SPDX-License-Identifier: Apache-2.0
# One compile-error test (the shape of fmt's test/compile-error-test): SOURCE must compile with FLAGS
# (the control: the harness and the includes are fine), and must fail with -DDQ4_EXPECT_ERROR plus
# ERROR_FLAGS, printing EXPECTED. Inputs: COMPILER, SOURCE, FLAGS and ERROR_FLAGS ('|'-separated),
# EXPECTED, WORK_DIR.
cmake_policy(VERSION 3.25)
string(REPLACE "|" ";" flags "${FLAGS}")
string(REPLACE "|" ";" error_flags "${ERROR_FLAGS}")
file(MAKE_DIRECTORY "${WORK_DIR}")
get_filename_component(name "${SOURCE}" NAME_WE)
execute_process(COMMAND "${COMPILER}" ${flags} "${SOURCE}" -o "${WORK_DIR}/${name}.o"
  RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "the control build of ${name} fails, so the test proves nothing:\n${output}")
endif()
execute_process(COMMAND "${COMPILER}" ${flags} ${error_flags} -DDQ4_EXPECT_ERROR "${SOURCE}" -o "${WORK_DIR}/${name}.o"
  RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
if(result EQUAL 0)
  message(FATAL_ERROR "${name}: compiled, but must be a compile error saying \"${EXPECTED}\"")
endif()
string(FIND "${output}" "${EXPECTED}" found)
if(found EQUAL -1)
  message(FATAL_ERROR "${name}: failed to compile, but without \"${EXPECTED}\":\n${output}")
endif()
message(STATUS "${name}: a compile error saying \"${EXPECTED}\", as promised")
