# CTest registration of the CPU SIMD path tests (owned by "perf"; included by
# engine/native/CMakeLists.txt, which includes every tests/*.cmake). Adds:
#   simd_paths          AVX2+FMA kernels against the scalar reference on model-sized shapes, and the
#                       vector exp (simd_test.cpp)
#   op_harness_scalar   the op harness again with STRATA_CPU_SIMD=scalar, so the scalar reference
#                       kernels stay checked against the fp64 references on AVX2 machines too
# Not here: the op harness itself (op_harness.cpp) or the kernels (src/cpu).
add_executable(strata_simd_test ${STRATA_NATIVE_DIR}/tests/simd_test.cpp)
target_link_libraries(strata_simd_test PRIVATE strata_core)
target_compile_options(strata_simd_test PRIVATE ${STRATA_CXX_FLAGS})
add_test(NAME simd_paths COMMAND strata_simd_test)
set_tests_properties(simd_paths PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=2" TIMEOUT 120)

add_test(NAME op_harness_scalar COMMAND strata_op_harness)
set_tests_properties(op_harness_scalar PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=2;STRATA_CPU_SIMD=scalar" TIMEOUT 120)
