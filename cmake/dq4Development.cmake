# SPDX-License-Identifier: Apache-2.0
# Settings for dq4's own tests, examples and benchmarks; never applied to consumers.

# CUDA, when a compiler is found. Default architectures: every real target the installed nvcc can
# build, from sm_75 up (CMake's own tables can lag nvcc, so nvcc is asked). Override as usual with
# -DCMAKE_CUDA_ARCHITECTURES=... or the CUDAARCHS environment variable.
include(CheckLanguage)
check_language(CUDA)
if(CMAKE_CUDA_COMPILER)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES AND NOT DEFINED ENV{CUDAARCHS})
    execute_process(COMMAND "${CMAKE_CUDA_COMPILER}" --list-gpu-code
      OUTPUT_VARIABLE dq4_gpu_codes
      RESULT_VARIABLE dq4_list_result
      ERROR_QUIET)
    if(NOT dq4_list_result EQUAL 0)
      message(FATAL_ERROR "dq4: `${CMAKE_CUDA_COMPILER} --list-gpu-code` failed; "
        "set CMAKE_CUDA_ARCHITECTURES (e.g. -DCMAKE_CUDA_ARCHITECTURES=90-real)")
    endif()
    string(REGEX MATCHALL "sm_[0-9]+" dq4_gpu_codes "${dq4_gpu_codes}")
    set(dq4_architectures "")
    foreach(code IN LISTS dq4_gpu_codes)
      string(REPLACE "sm_" "" arch "${code}")
      if(arch GREATER_EQUAL 75)
        list(APPEND dq4_architectures "${arch}-real")
      endif()
    endforeach()
    list(REMOVE_DUPLICATES dq4_architectures)
    list(SORT dq4_architectures COMPARE NATURAL)
    if(NOT dq4_architectures)
      message(FATAL_ERROR "dq4: ${CMAKE_CUDA_COMPILER} supports no target from sm_75 up")
    endif()
    set(CMAKE_CUDA_ARCHITECTURES "${dq4_architectures}" CACHE STRING
      "CUDA architectures for dq4's tests and examples (default: every real target of nvcc from sm_75)")
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  message(STATUS "dq4: CUDA ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES}")
else()
  message(STATUS "dq4: no CUDA compiler found: building and running the host (CPU) parts only")
endif()

# The lowest target of each major version in CMAKE_CUDA_ARCHITECTURES (of the default 12: 75, 80, 90,
# 100, 110, 120), for the targets that only need to run on the GPU at hand (the GPU tests and the
# ALU-bound benchmark): a GPU runs the SASS of a lower minor version of its major (sm_80's on
# sm_86..89, sm_100's on sm_103, sm_120's on sm_121), and dq4's code paths differ only between
# majors (bf16 arithmetic from sm_80, bf16x2 adds from sm_90); tests/sass checks the SASS of every
# target. It halves these targets' share of the build.
function(dq4_lowest_of_each_major out)
  set(result "")
  set(majors "")
  foreach(arch IN LISTS CMAKE_CUDA_ARCHITECTURES)
    string(REGEX MATCH "^[0-9]+" number "${arch}")
    math(EXPR major "${number} / 10")
    if(NOT major IN_LIST majors)
      list(APPEND majors "${major}")
      list(APPEND result "${arch}")
    endif()
  endforeach()
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

# Warnings are errors in dq4's own targets, host and device, through CMake's COMPILE_WARNING_AS_ERROR
# (nvcc: -Werror all-warnings): on by default here; a packager whose newer compiler warns switches it
# off with -DCMAKE_COMPILE_WARNING_AS_ERROR=OFF. dq4_warnings is linked privately, so nothing leaks.
if(NOT DEFINED CMAKE_COMPILE_WARNING_AS_ERROR)
  set(CMAKE_COMPILE_WARNING_AS_ERROR ON)
endif()
add_library(dq4_warnings INTERFACE)
target_compile_options(dq4_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic>
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>
  # nvcc's -Werror does not reach the host compiler it runs; the same switch decides for both.
  $<$<AND:$<COMPILE_LANGUAGE:CUDA>,$<BOOL:$<TARGET_PROPERTY:COMPILE_WARNING_AS_ERROR>>>:-Xcompiler=-Werror>)

# Python's site-packages folders, where pip puts tools and headers the tests and benchmarks can use
# (cuobjdump, nvdisasm, CUTLASS's headers).
find_package(Python3 COMPONENTS Interpreter)
set(DQ4_PYTHON_SITE_DIRS "")
if(Python3_Interpreter_FOUND)
  execute_process(
    COMMAND "${Python3_EXECUTABLE}" -c "import site; print(';'.join(site.getsitepackages() + [site.getusersitepackages()]))"
    OUTPUT_VARIABLE DQ4_PYTHON_SITE_DIRS
    OUTPUT_STRIP_TRAILING_WHITESPACE)
endif()
