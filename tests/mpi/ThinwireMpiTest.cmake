# Helpers for tests that run under mpiexec; included from tests/CMakeLists.txt when
# THINWIRE_HAVE_MPI, so every test directory can use them.
#
# thinwire_add_mpi_gtest(<target> SOURCES ... [LIBS ...])
#   A GoogleTest executable whose main (mpi_test_main.cpp) initializes MPI and creates this
#   process's MpiTransport. THINWIRE_TEST_MPI is defined, so tests/support/world.hpp runs test
#   bodies on the MPI transport (bodies for other world sizes are skipped).
#
# thinwire_add_mpi_test(<name> TARGET <exe> NPROCS <n> [TIMEOUT s] [ARGS ...])
#   Registers `mpiexec -n <n> --oversubscribe --bind-to none <exe> [ARGS...]` with CTest, label
#   "mpi", a timeout (default 120 s) and the environment that lets OpenMPI run as root (CI does)
#   and oversubscribe a 2-core machine. mpi_yield_when_idle keeps ranks that wait inside MPI from
#   starving the others of the few cores. Leak detection is off under mpiexec: OpenMPI's runtime
#   and its dlopen'ed plugins leave allocations at exit that LeakSanitizer would report (our own
#   code is leak-checked by the same contract tests on the threads backend).

set(THINWIRE_MPI_TEST_ENVIRONMENT
  OMPI_ALLOW_RUN_AS_ROOT=1
  OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  OMPI_MCA_rmaps_base_oversubscribe=1
  OMPI_MCA_mpi_yield_when_idle=1
  LSAN_OPTIONS=detect_leaks=0)

if(NOT TARGET thinwire_mpi_test_main)
  add_library(thinwire_mpi_test_main STATIC ${CMAKE_CURRENT_LIST_DIR}/mpi_test_main.cpp)
  target_link_libraries(thinwire_mpi_test_main PUBLIC thinwire::comm GTest::gtest)
  target_include_directories(thinwire_mpi_test_main PUBLIC ${PROJECT_SOURCE_DIR}/tests)
  target_compile_definitions(thinwire_mpi_test_main PUBLIC THINWIRE_TEST_MPI=1)
  thinwire_set_warnings(thinwire_mpi_test_main)
endif()

function(thinwire_add_mpi_gtest target)
  cmake_parse_arguments(arg "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${target} ${arg_SOURCES})
  target_link_libraries(${target} PRIVATE ${arg_LIBS} thinwire_mpi_test_main)
  thinwire_set_warnings(${target})
endfunction()

function(thinwire_add_mpi_test name)
  cmake_parse_arguments(arg "" "TARGET;NPROCS;TIMEOUT" "ARGS" ${ARGN})
  if(NOT arg_TARGET OR NOT arg_NPROCS)
    message(FATAL_ERROR "thinwire_add_mpi_test(${name}): TARGET and NPROCS are required")
  endif()
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 120)
  endif()
  add_test(NAME ${name}
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${arg_NPROCS} --oversubscribe
                   --bind-to none ${MPIEXEC_PREFLAGS} $<TARGET_FILE:${arg_TARGET}>
                   ${MPIEXEC_POSTFLAGS} ${arg_ARGS})
  set_tests_properties(${name} PROPERTIES
    LABELS mpi
    TIMEOUT ${arg_TIMEOUT}
    PROCESSORS ${arg_NPROCS}
    ENVIRONMENT "${THINWIRE_MPI_TEST_ENVIRONMENT}")
endfunction()
