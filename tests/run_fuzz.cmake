# SPDX-License-Identifier: Apache-2.0
# Builds tests/fuzz_host_api.cpp with COMPILER under AddressSanitizer and UndefinedBehaviorSanitizer
# (every report fatal) and runs it. Inputs: COMPILER, SOURCE, INCLUDE_DIR, WORK_DIR.
cmake_policy(VERSION 3.25)
file(MAKE_DIRECTORY "${WORK_DIR}")
get_filename_component(compiler_name "${COMPILER}" NAME)
set(binary "${WORK_DIR}/fuzz_host_api_${compiler_name}")
execute_process(
  COMMAND "${COMPILER}" -std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined
    -fno-sanitize-recover=all -Wall -Wextra -Werror -I "${INCLUDE_DIR}" "${SOURCE}" -o "${binary}"
  RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "could not build the fuzzer with ${COMPILER}")
endif()
set(ENV{ASAN_OPTIONS} "detect_leaks=1:abort_on_error=0")
set(ENV{UBSAN_OPTIONS} "print_stacktrace=1")
execute_process(COMMAND "${binary}" RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "the fuzzer built with ${COMPILER} failed (exit ${result})")
endif()
