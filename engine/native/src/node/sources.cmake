# Build hook of the engine-host part (included by engine/native/CMakeLists.txt when
# STRATA_BUILD_NODE is ON, which engine/native/build.mjs sets through cmake-js): the
# node-addon-api binding `strata_node.node` over the native-model library and its C API
# (include/strata/engine.h). cmake-js passes the Node-API include folders in CMAKE_JS_INC, any
# platform glue sources in CMAKE_JS_SRC and link libraries in CMAKE_JS_LIB.
# Not here: the engine libraries themselves (model/sources.cmake, the core in CMakeLists.txt).
if(NOT TARGET strata_model)
  message(FATAL_ERROR "strata_node: the strata_model library (engine/native/src/model/sources.cmake) is missing")
endif()

add_library(strata_node SHARED ${STRATA_SRC_DIR}/node/binding.cpp ${CMAKE_JS_SRC})
set_target_properties(strata_node PROPERTIES PREFIX "" SUFFIX ".node")
target_include_directories(strata_node PRIVATE ${CMAKE_JS_INC})
target_compile_definitions(strata_node PRIVATE NAPI_VERSION=8 NAPI_CPP_EXCEPTIONS NODE_ADDON_API_DISABLE_DEPRECATED)
target_compile_options(strata_node PRIVATE ${STRATA_CXX_FLAGS})
target_link_libraries(strata_node PRIVATE strata_model ${CMAKE_JS_LIB})
if(MSVC AND CMAKE_JS_NODELIB_DEF AND CMAKE_JS_NODELIB_TARGET)
  execute_process(COMMAND ${CMAKE_AR} /def:${CMAKE_JS_NODELIB_DEF} /out:${CMAKE_JS_NODELIB_TARGET} ${CMAKE_STATIC_LINKER_FLAGS})
endif()
