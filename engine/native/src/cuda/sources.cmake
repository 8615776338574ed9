# Build hook of the CUDA backend (included by engine/native/CMakeLists.txt when STRATA_CUDA is ON).
# Compiles cuda/*.cu into the object library `strata_cuda` and hands those objects to every target
# that links `strata_core`, so the backend's load-time registration is always linked in (a static
# archive would drop it). Also defines STRATA_HAVE_CUDA for consumers and builds the GPU-only tools
# (tests/cuda_*.cpp: CPU-vs-CUDA comparison, GEMM/op timing, training comparison, whole-model
# training-step and decode timing) which
# scripts/gpu/visit.sh runs; they are not CTest tests because CI has no GPU. The one CTest test here,
# cuda_quant_rules, runs the GPU quantization rules on the host (no GPU needed).
#
# Compiler: nvcc from a CUDA toolkit, or from PyPI wheels (scripts/ci/install-cuda-wheels.sh):
#   cmake -DSTRATA_CUDA=ON -DCMAKE_CUDA_COMPILER=$(scripts/ci/install-cuda-wheels.sh | tail -n1) ...
# Architectures: STRATA_CUDA_GENCODE (default sm_80 and sm_90a SASS, plus compute_90a PTX).
include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(FATAL_ERROR "STRATA_CUDA=ON but no nvcc was found: install a CUDA toolkit or run "
                      "scripts/ci/install-cuda-wheels.sh and pass -DCMAKE_CUDA_COMPILER=<printed path>")
endif()
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES OFF)  # explicit -gencode flags below
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

set(STRATA_CUDA_GENCODE
    "-gencode=arch=compute_80,code=sm_80;-gencode=arch=compute_90a,code=[sm_90a,compute_90a]"
    CACHE STRING "nvcc -gencode flags of the CUDA backend")

file(GLOB STRATA_CUDA_SOURCES CONFIGURE_DEPENDS ${STRATA_SRC_DIR}/cuda/*.cu)
add_library(strata_cuda OBJECT ${STRATA_CUDA_SOURCES})
target_include_directories(strata_cuda PRIVATE ${STRATA_SRC_DIR})
# CUDA sources compile as C++17 (CMake 3.25 cannot ask nvcc for C++20); the core headers are C++17-clean.
target_compile_options(strata_cuda PRIVATE ${STRATA_CUDA_GENCODE} -O3 --expt-relaxed-constexpr
                       -Xcompiler=-Wall,-Wno-unused-parameter)
target_link_libraries(strata_cuda PUBLIC CUDA::cudart_static CUDA::cublas CUDA::cublasLt)
set_target_properties(strata_cuda PROPERTIES CUDA_ARCHITECTURES OFF POSITION_INDEPENDENT_CODE ON CUDA_STANDARD 17)

# Every consumer of strata_core gets the CUDA objects on its link line (before the archives, as
# sources), the CUDA libraries, and STRATA_HAVE_CUDA.
target_sources(strata_core INTERFACE $<TARGET_OBJECTS:strata_cuda>)
target_link_libraries(strata_core INTERFACE CUDA::cudart_static CUDA::cublas CUDA::cublasLt)
target_compile_definitions(strata_core INTERFACE STRATA_HAVE_CUDA=1)
add_dependencies(strata_core strata_cuda)

if(STRATA_BUILD_TESTS)
  foreach(tool cuda_compare cuda_bench cuda_fp8_scaling_probe)
    if(EXISTS ${STRATA_NATIVE_DIR}/tests/${tool}.cpp)
      add_executable(strata_${tool} ${STRATA_NATIVE_DIR}/tests/${tool}.cpp)
      target_link_libraries(strata_${tool} PRIVATE strata_core)
      target_include_directories(strata_${tool} PRIVATE ${STRATA_SRC_DIR})
      target_compile_options(strata_${tool} PRIVATE ${STRATA_CXX_FLAGS})
    endif()
  endforeach()
  # Host run of the GPU quantization rules against the CPU reference: a CTest test, no GPU needed.
  if(EXISTS ${STRATA_NATIVE_DIR}/tests/cuda_quant_rules_test.cu)
    add_executable(strata_cuda_quant_rules_test ${STRATA_NATIVE_DIR}/tests/cuda_quant_rules_test.cu)
    target_link_libraries(strata_cuda_quant_rules_test PRIVATE strata_core)
    target_include_directories(strata_cuda_quant_rules_test PRIVATE ${STRATA_SRC_DIR})
    target_compile_options(strata_cuda_quant_rules_test PRIVATE --expt-relaxed-constexpr)
    set_target_properties(strata_cuda_quant_rules_test PROPERTIES CUDA_ARCHITECTURES OFF CUDA_STANDARD 17)
    add_test(NAME cuda_quant_rules COMMAND strata_cuda_quant_rules_test)
  endif()
  # Whole-model tools: the training comparison and the model bench (training step / decode timing).
  if(TARGET strata_model)
    foreach(tool cuda_train_compare cuda_model_bench)
      if(EXISTS ${STRATA_NATIVE_DIR}/tests/${tool}.cpp)
        add_executable(strata_${tool} ${STRATA_NATIVE_DIR}/tests/${tool}.cpp)
        target_link_libraries(strata_${tool} PRIVATE strata_model)
        target_compile_options(strata_${tool} PRIVATE ${STRATA_CXX_FLAGS})
      endif()
    endforeach()
  endif()
endif()
