# Build hook of the native-model part (included by engine/native/CMakeLists.txt when present):
# the `strata_model` library (io, model, train, C API), the `strata-engine` CLI and the model tests
# (CTest). Uses the `strata_core` target (ops, CPU kernels). Not the op harness (native-ops).
file(GLOB STRATA_MODEL_SOURCES CONFIGURE_DEPENDS
  ${STRATA_SRC_DIR}/io/*.cpp
  ${STRATA_SRC_DIR}/model/*.cpp
  ${STRATA_SRC_DIR}/train/*.cpp)
add_library(strata_model STATIC ${STRATA_MODEL_SOURCES})
target_include_directories(strata_model PUBLIC ${STRATA_SRC_DIR} ${STRATA_NATIVE_DIR}/include)
target_link_libraries(strata_model PUBLIC strata_core)
target_compile_options(strata_model PRIVATE ${STRATA_CXX_FLAGS})

if(EXISTS ${STRATA_SRC_DIR}/cli/strata_engine.cpp)
  add_executable(strata-engine ${STRATA_SRC_DIR}/cli/strata_engine.cpp)
  target_link_libraries(strata-engine PRIVATE strata_model)
  target_compile_options(strata-engine PRIVATE ${STRATA_CXX_FLAGS})
endif()

if(STRATA_BUILD_TESTS)
  enable_testing()
  file(GLOB STRATA_MODEL_TESTS CONFIGURE_DEPENDS ${STRATA_SRC_DIR}/model/tests/*_test.cpp)
  foreach(test_source ${STRATA_MODEL_TESTS})
    get_filename_component(test_name ${test_source} NAME_WE)
    add_executable(${test_name} ${test_source})
    target_link_libraries(${test_name} PRIVATE strata_model)
    target_compile_options(${test_name} PRIVATE ${STRATA_CXX_FLAGS})
    add_test(NAME model_${test_name} COMMAND ${test_name})
    set_tests_properties(model_${test_name} PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=1" TIMEOUT 300)
  endforeach()
endif()
# The CLI test runs the strata-engine executable from the same build folder.
if(TARGET cli_test AND TARGET strata-engine)
  add_dependencies(cli_test strata-engine)
endif()
