# SPDX-License-Identifier: Apache-2.0
# Configures, builds and runs tests/consumer with dq4 brought in as MODE says.
# Inputs: MODE, DQ4_SOURCE_DIR, WORK_DIR, GENERATOR, CUDA_COMPILER and CUDA_ARCHITECTURE (both
# empty without CUDA).
cmake_policy(VERSION 3.25)
set(build "${WORK_DIR}/${MODE}")
file(REMOVE_RECURSE "${build}")
set(args -S "${DQ4_SOURCE_DIR}/tests/consumer" -B "${build}" -G "${GENERATOR}" -DDQ4_CONSUMER_MODE=${MODE})
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

foreach(step IN ITEMS configure build run)
  if(step STREQUAL "configure")
    set(command "${CMAKE_COMMAND}" ${args})
  elseif(step STREQUAL "build")
    set(command "${CMAKE_COMMAND}" --build "${build}")
  else()
    set(command "${build}/consumer_host")
  endif()
  execute_process(COMMAND ${command} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "consumer (${MODE}): ${step} failed")
  endif()
endforeach()
