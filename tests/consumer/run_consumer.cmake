# SPDX-License-Identifier: Apache-2.0
# Configures, builds and runs tests/consumer with dq4 brought in as MODE says. The README's code
# blocks marked <!-- tests/consumer: FILE --> are copied, as they stand, into FILE in the build
# directory, where the consumer's sources include them.
# Inputs: MODE, DQ4_SOURCE_DIR, WORK_DIR, GENERATOR, CUDA_COMPILER and CUDA_ARCHITECTURE (both
# empty without CUDA).
cmake_policy(VERSION 3.25)
set(build "${WORK_DIR}/${MODE}")
file(REMOVE_RECURSE "${build}")
set(snippets "${build}/readme")

# The README's marked blocks: the ```cpp fence after each marker, up to the closing fence.
file(READ "${DQ4_SOURCE_DIR}/README.md" readme)
foreach(name IN ITEMS readme_device.cuh readme_host.hpp)
  set(marker "<!-- tests/consumer: ${name} -->")
  string(FIND "${readme}" "${marker}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "README.md has no block marked ${marker}")
  endif()
  string(SUBSTRING "${readme}" ${at} -1 rest)
  string(FIND "${rest}" "```cpp\n" open)
  math(EXPR open "${open} + 7")
  string(SUBSTRING "${rest}" ${open} -1 rest)
  string(FIND "${rest}" "\n```" close)
  string(SUBSTRING "${rest}" 0 ${close} block)
  file(WRITE "${snippets}/${name}" "// Copied from README.md by tests/consumer/run_consumer.cmake\n${block}\n")
endforeach()

set(args -S "${DQ4_SOURCE_DIR}/tests/consumer" -B "${build}" -G "${GENERATOR}" -DDQ4_CONSUMER_MODE=${MODE}
  -DDQ4_README_SNIPPETS=${snippets})
if(CUDA_COMPILER)
  list(APPEND args -DCMAKE_CUDA_COMPILER=${CUDA_COMPILER} -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHITECTURE})
endif()

if(MODE STREQUAL "add_subdirectory")
  list(APPEND args -DDQ4_SOURCE_DIR=${DQ4_SOURCE_DIR})
elseif(MODE STREQUAL "fetchcontent")
  # A source archive of what a release ships, fetched by URL as users fetch a release.
  set(archive "${WORK_DIR}/dq4-source.tar.gz")
  file(REMOVE "${archive}")
  execute_process(
    COMMAND "${CMAKE_COMMAND}" -E tar czf "${archive}" --format=gnutar -- CMakeLists.txt LICENSE include cmake
    WORKING_DIRECTORY "${DQ4_SOURCE_DIR}"
    RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "could not archive the dq4 sources")
  endif()
  list(APPEND args -DDQ4_ARCHIVE=${archive})
elseif(MODE STREQUAL "find_package")
  list(APPEND args -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
endif()

set(steps configure build run_host)
if(CUDA_COMPILER)
  list(APPEND steps run_cuda)
endif()
foreach(step IN LISTS steps)
  if(step STREQUAL "configure")
    set(command "${CMAKE_COMMAND}" ${args})
  elseif(step STREQUAL "build")
    set(command "${CMAKE_COMMAND}" --build "${build}")
  elseif(step STREQUAL "run_host")
    set(command "${build}/consumer_host")
  else()
    set(command "${build}/consumer_cuda")
  endif()
  execute_process(COMMAND ${command} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "consumer (${MODE}): ${step} failed")
  endif()
endforeach()
