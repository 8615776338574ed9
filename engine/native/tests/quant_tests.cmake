# CTest registration of the quantization tests (owned by "precision"; included by
# engine/native/CMakeLists.txt, which includes every tests/*.cmake). Adds:
#   strata_quant_test      numerics of the quantizers (quant_test.cpp)
#   strata_quant_gemm_test the GEMM precision hook (quant_gemm_test.cpp)
#   strata_quant_vectors  generator of tests/fixtures/quant-vectors.json; the `quant_vectors_fixture`
#                         test fails when the checked-in fixture differs from what this build generates.
# Not here: the quantizer sources themselves (src/ops/quant*.cpp are globbed into strata_core).
add_executable(strata_quant_test ${STRATA_NATIVE_DIR}/tests/quant_test.cpp)
target_link_libraries(strata_quant_test PRIVATE strata_core)
target_compile_options(strata_quant_test PRIVATE ${STRATA_CXX_FLAGS})
add_test(NAME quant COMMAND strata_quant_test)
set_tests_properties(quant PROPERTIES TIMEOUT 120)

add_executable(strata_quant_vectors ${STRATA_NATIVE_DIR}/tests/quant_vectors.cpp)
target_link_libraries(strata_quant_vectors PRIVATE strata_core)
target_compile_options(strata_quant_vectors PRIVATE ${STRATA_CXX_FLAGS})
get_filename_component(STRATA_REPO_ROOT ${STRATA_NATIVE_DIR}/../.. ABSOLUTE)
add_test(NAME quant_vectors_fixture
         COMMAND strata_quant_vectors --check ${STRATA_REPO_ROOT}/tests/fixtures/quant-vectors.json)

add_executable(strata_quant_gemm_test ${STRATA_NATIVE_DIR}/tests/quant_gemm_test.cpp)
target_link_libraries(strata_quant_gemm_test PRIVATE strata_core)
target_compile_options(strata_quant_gemm_test PRIVATE ${STRATA_CXX_FLAGS})
add_test(NAME quant_gemm COMMAND strata_quant_gemm_test)
set_tests_properties(quant_gemm PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=2" TIMEOUT 120)
