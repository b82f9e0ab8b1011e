# P2proxyHelpers: one helper per kind of target (modules, tests, fuzzers, daemons), the warning
# and sanitizer flags, and the layering rule of DESIGN.md §4: a module links, and includes the
# headers of, only the modules it declares below it.

set(P2P_WARNINGS -Wall -Wextra -Wno-unused-parameter -Wnon-virtual-dtor -Wimplicit-fallthrough
    -Wmissing-declarations -Wformat=2)
if(P2P_WERROR)
  list(APPEND P2P_WARNINGS -Werror)
endif()

if(P2P_SANITIZE OR P2P_FUZZ)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
if(P2P_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "P2P_FUZZ needs clang (libFuzzer); configure with the 'fuzz' preset")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
  add_compile_definitions(P2P_FUZZING=1)
endif()

# Every module name, in the order of DESIGN.md §4; filled in by p2proxy_module().
set_property(GLOBAL PROPERTY P2P_MODULES "")

# p2proxy_module(NAME <name> [DEPS <module>...] [SOURCES <file>...] [LIBS <target>...])
#
# Declares the static library p2proxy_<name> with the alias p2proxy::<name>. DEPS are the
# p2proxy modules below it that it may use; LIBS are external libraries. The build fails when a
# source or header of this module includes a header of a module outside DEPS (transitively).
function(p2proxy_module)
  cmake_parse_arguments(M "PUBLIC_API" "NAME" "DEPS;SOURCES;LIBS" ${ARGN})
  set(target p2proxy_${M_NAME})
  # Allowed = this module + the transitive closure of its declared deps.
  set(allowed ${M_NAME})
  foreach(dep IN LISTS M_DEPS)
    if(NOT TARGET p2proxy_${dep})
      message(FATAL_ERROR "module ${M_NAME}: dependency '${dep}' is not declared before it")
    endif()
    get_property(dep_allowed GLOBAL PROPERTY P2P_ALLOWED_${dep})
    list(APPEND allowed ${dep_allowed})
  endforeach()
  # PUBLIC_API: the module implements include/p2proxy/ and may include it.
  if(M_PUBLIC_API)
    list(APPEND allowed p2proxy)
  endif()
  list(REMOVE_DUPLICATES allowed)
  set_property(GLOBAL PROPERTY P2P_ALLOWED_${M_NAME} "${allowed}")
  set_property(GLOBAL APPEND PROPERTY P2P_MODULES ${M_NAME})

  file(GLOB_RECURSE headers CONFIGURE_DEPENDS
       "${CMAKE_CURRENT_SOURCE_DIR}/*.h" "${CMAKE_CURRENT_SOURCE_DIR}/*.hpp")
  add_library(${target} STATIC ${M_SOURCES} ${headers})
  add_library(p2proxy::${M_NAME} ALIAS ${target})
  target_include_directories(${target} PUBLIC
    "${PROJECT_SOURCE_DIR}/src" "${PROJECT_SOURCE_DIR}/include")
  target_compile_options(${target} PRIVATE ${P2P_WARNINGS})
  set(link_deps)
  foreach(dep IN LISTS M_DEPS)
    list(APPEND link_deps p2proxy::${dep})
  endforeach()
  target_link_libraries(${target} PUBLIC ${link_deps} ${M_LIBS})

  # The layering check runs on every build in which a file of this module changed.
  set(files ${M_SOURCES} ${headers})
  list(TRANSFORM files PREPEND "${CMAKE_CURRENT_SOURCE_DIR}/" REGEX "^[^/]")
  set(stamp "${CMAKE_CURRENT_BINARY_DIR}/${target}.layering.stamp")
  add_custom_command(OUTPUT "${stamp}"
    COMMAND "${CMAKE_COMMAND}" -DMODULE=${M_NAME} "-DALLOWED=${allowed}"
            "-DKNOWN=${P2P_ALL_MODULES}" "-DFILES=${files}" "-DROOT=${PROJECT_SOURCE_DIR}"
            -P "${PROJECT_SOURCE_DIR}/cmake/CheckLayering.cmake"
    COMMAND "${CMAKE_COMMAND}" -E touch "${stamp}"
    DEPENDS ${files} "${PROJECT_SOURCE_DIR}/cmake/CheckLayering.cmake"
    COMMENT "Checking layering of module ${M_NAME}" VERBATIM)
  add_custom_target(${target}_layering DEPENDS "${stamp}")
  add_dependencies(${target} ${target}_layering)
endfunction()

# Every module that exists or is planned (DESIGN.md §4). An include of "<module>/..." for a name
# in this list but outside a module's allowed set is a layering error; "p2proxy/..." (the public
# API) sits above every module.
set(P2P_ALL_MODULES base config crypto wg net tunnel stack dns tls http proxy control nat uplink site
    client server api p2proxy)

# p2proxy_test(NAME <name> SOURCES <file>... [LIBS <target>...])
#
# A Catch2 test binary, registered with CTest one test case at a time ("<name>:<case>").
function(p2proxy_test)
  cmake_parse_arguments(T "" "NAME" "SOURCES;LIBS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE p2proxy_test_main ${T_LIBS})
  target_compile_options(${T_NAME} PRIVATE ${P2P_WARNINGS})
  # --warn NoTests: a test case whose name CTest mangled (a ";" in it) fails instead of
  # passing without running.
  catch_discover_tests(${T_NAME} TEST_PREFIX "${T_NAME}:" EXTRA_ARGS --warn NoTests
    PROPERTIES TIMEOUT 120 ENVIRONMENT "P2P_TEST_SRCDIR=${PROJECT_SOURCE_DIR}")
endfunction()

# p2proxy_fuzzer(NAME <name> SOURCES <file>... LIBS <target>...)
#
# A libFuzzer target <name>_fuzzer, seeded from fuzz/corpus/<name>/. CTest runs each briefly
# (label "fuzz"): a bounded number of runs over the seeds plus mutations.
function(p2proxy_fuzzer)
  cmake_parse_arguments(F "" "NAME;RUNS" "SOURCES;LIBS" ${ARGN})
  if(NOT F_RUNS)
    set(F_RUNS 20000)
  endif()
  add_executable(${F_NAME}_fuzzer ${F_SOURCES})
  target_link_libraries(${F_NAME}_fuzzer PRIVATE ${F_LIBS})
  target_link_options(${F_NAME}_fuzzer PRIVATE -fsanitize=fuzzer)
  target_compile_options(${F_NAME}_fuzzer PRIVATE ${P2P_WARNINGS})
  set(corpus "${PROJECT_SOURCE_DIR}/fuzz/corpus/${F_NAME}")
  if(NOT IS_DIRECTORY "${corpus}")
    message(FATAL_ERROR "fuzzer ${F_NAME}: seed corpus ${corpus} is missing")
  endif()
  # The seeds are read-only inputs; new findings go to a scratch directory in the build tree.
  set(scratch "${CMAKE_CURRENT_BINARY_DIR}/${F_NAME}_corpus")
  add_test(NAME fuzz:${F_NAME}
    COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=1
            $<TARGET_FILE:${F_NAME}_fuzzer> -runs=${F_RUNS} -max_total_time=60 -max_len=4096
            -rss_limit_mb=2048 "${scratch}" "${corpus}")
  set_tests_properties(fuzz:${F_NAME} PROPERTIES LABELS fuzz TIMEOUT 180
    FIXTURES_REQUIRED fuzz_scratch_${F_NAME})
  add_test(NAME fuzz:${F_NAME}:scratch COMMAND ${CMAKE_COMMAND} -E make_directory "${scratch}")
  set_tests_properties(fuzz:${F_NAME}:scratch PROPERTIES FIXTURES_SETUP fuzz_scratch_${F_NAME}
    LABELS fuzz)
endfunction()

# p2proxy_proto(TARGET <lib> PROTO <file.proto> [ROOT <dir>])
#
# Compiles one .proto (a config schema) with protoc into the build tree and declares the static
# library <lib> that holds it. The generated header is included by the .proto's path below ROOT
# (default: src/), e.g. "site/site_config.pb.h". Generated code is not ours: warnings off.
function(p2proxy_proto)
  cmake_parse_arguments(P "" "TARGET;PROTO;ROOT" "" ${ARGN})
  if(NOT P_ROOT)
    set(P_ROOT "${PROJECT_SOURCE_DIR}/src")
  endif()
  set(gen_dir "${CMAKE_CURRENT_BINARY_DIR}/gen")
  file(RELATIVE_PATH rel "${P_ROOT}" "${CMAKE_CURRENT_SOURCE_DIR}/${P_PROTO}")
  string(REGEX REPLACE "\\.proto$" "" stem "${rel}")
  get_filename_component(sub "${rel}" DIRECTORY)
  file(MAKE_DIRECTORY "${gen_dir}/${sub}")
  add_custom_command(
    OUTPUT "${gen_dir}/${stem}.pb.cc" "${gen_dir}/${stem}.pb.h"
    COMMAND protobuf::protoc --proto_path=${P_ROOT} --cpp_out=${gen_dir} ${rel}
    DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/${P_PROTO}" protobuf::protoc
    COMMENT "protoc ${rel}" VERBATIM)
  add_library(${P_TARGET} STATIC "${gen_dir}/${stem}.pb.cc")
  target_include_directories(${P_TARGET} SYSTEM PUBLIC "${gen_dir}")
  target_link_libraries(${P_TARGET} PUBLIC protobuf::libprotobuf)
  target_compile_options(${P_TARGET} PRIVATE -w)
endfunction()
