# CTest driver of the fuzz_decoders test (see tests/fuzz/CMakeLists.txt):
#   cmake -DFUZZER=bin -DPROBLEM=why-no-bin -DSCRATCH=dir -DCORPUS=dir -DRUNS=n -DMAX_SECONDS=s -P run_fuzzer.cmake
if(NOT FUZZER)
  message(FATAL_ERROR "fuzz_decoders: ${PROBLEM}. clang++-14 with libclang-rt-14-dev is required "
                      "for the fuzz test; run scripts/setup.sh, then reconfigure and rebuild.")
endif()
if(NOT EXISTS "${FUZZER}")
  message(FATAL_ERROR "fuzz_decoders: ${FUZZER} is not built (cmake --build <build dir>)")
endif()
file(GLOB seeds "${CORPUS}/*")
if(NOT seeds)
  message(FATAL_ERROR "fuzz_decoders: the seed corpus ${CORPUS} is empty or missing")
endif()
file(REMOVE_RECURSE "${SCRATCH}")
file(MAKE_DIRECTORY "${SCRATCH}/corpus" "${SCRATCH}/artifacts")
execute_process(
  COMMAND "${FUZZER}" -runs=${RUNS} -seed=1 -max_len=4096 -max_total_time=${MAX_SECONDS}
          -timeout=10 -print_final_stats=1 -artifact_prefix=${SCRATCH}/artifacts/
          "${SCRATCH}/corpus" "${CORPUS}"
  WORKING_DIRECTORY "${SCRATCH}"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(GLOB found "${SCRATCH}/artifacts/*")
  message(FATAL_ERROR "fuzz_decoders failed (exit ${rc}). Reproducer: ${found}\n"
                      "Replay: ${FUZZER} <file>; once fixed, copy it to ${CORPUS}/crash-<what>.bin")
endif()
