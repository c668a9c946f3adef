# bp_add_test(<name> SOURCES <src...> [LIBS <libs...>] [LABELS <labels...>]
#             [ARGS <args...>] [TIMEOUT <s>] [NO_VALGRIND])
#
# One test executable, registered with CTest. Tests see:
#   BATPIPE_PLUGIN_PATH = the build tree's plugin directory
#   BP_TEST_DATA        = tests/data in the source tree
# Exit code 77 means "skipped" (e.g. no GPU). Unless NO_VALGRIND is given,
# a second test <name>_valgrind (label "valgrind") runs it under memcheck.
function(bp_add_test name)
  cmake_parse_arguments(T "NO_VALGRIND" "TIMEOUT" "SOURCES;LIBS;LABELS;ARGS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE batpipe m ${T_LIBS})
  set(env "BATPIPE_PLUGIN_PATH=${BP_PLUGIN_BUILD_DIR}" "BP_TEST_DATA=${PROJECT_SOURCE_DIR}/tests/data"
          "BP_SOURCE_DIR=${PROJECT_SOURCE_DIR}" "BP_BINARY_DIR=${CMAKE_BINARY_DIR}")
  if(BP_SANITIZE)
    # intercept_tls_get_addr=0: LeakSanitizer otherwise crashes at exit when
    # oneDNN ran on OpenMP threads (google/sanitizers#1322, newer glibc).
    list(APPEND env "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:intercept_tls_get_addr=0"
                    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${env}" SKIP_RETURN_CODE 77
                       LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
  if(NOT T_NO_VALGRIND AND BP_VALGRIND AND NOT BP_SANITIZE)
    add_test(NAME ${name}_valgrind
             COMMAND ${BP_VALGRIND} --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
                     --show-leak-kinds=definite --track-origins=yes
                     --suppressions=${PROJECT_SOURCE_DIR}/tests/valgrind.supp
                     $<TARGET_FILE:${name}> ${T_ARGS})
    math(EXPR vt "${T_TIMEOUT} * 20")
    set_tests_properties(${name}_valgrind PROPERTIES ENVIRONMENT "${env};BP_UNDER_VALGRIND=1"
                         SKIP_RETURN_CODE 77 LABELS "valgrind" TIMEOUT ${vt})
  endif()
endfunction()
