# Optional CUDA part. Where nvcc is missing (or LLMK_CUDA=OFF) the library is built CPU-only,
# with stubs that report the reason at run time, and the configure step says so.
# Included at file scope (enable_language must not run inside a function).
include(CheckLanguage)

# The emulated build: cuda/*.cu compiled as host C++ against cuda/emulator (a SIMT emulator and
# runtime on the CPU), so that CI executes every kernel without a GPU. Tests only: the library it
# makes is never packaged (cmake/check-package.sh refuses it).
option(LLMK_CUDA_EMULATION "Build cuda/ as host C++ against the CUDA emulator (tests only, never shipped)" OFF)
set(LLMK_EMU_SANITIZER "" CACHE STRING "Emulated build: run the kernels under 'thread' (TSan) or 'address' (ASan + UBSan alignment)")

set(LLMK_NO_CUDA_REASON "")
if(LLMK_CUDA_EMULATION)
  find_path(LLMK_CUDA_INCLUDE_DIR cuda_runtime.h
            HINTS ENV CUDA_HOME ENV CUDA_PATH PATH_SUFFIXES include
            PATHS /usr/local/cuda/include /usr/include)
  if(NOT LLMK_CUDA_INCLUDE_DIR)
    message(FATAL_ERROR "LLMK_CUDA_EMULATION=ON needs the CUDA toolkit headers (cuda_runtime.h, cuda_fp16.h, "
                        "cuda_bf16.h): set CUDA_HOME")
  endif()
  set(LLMK_CUDA_ARCH_CSV "emulated")
  message(STATUS "llm-kernels: EMULATED CUDA (cuda/emulator, headers ${LLMK_CUDA_INCLUDE_DIR}, "
                 "sanitizer '${LLMK_EMU_SANITIZER}'): for tests only, not a shippable library")
  include(${CMAKE_CURRENT_LIST_DIR}/LlmkCudaEmulator.cmake)
elseif(LLMK_CUDA STREQUAL "OFF")
  set(LLMK_NO_CUDA_REASON "LLMK_CUDA=OFF at build time")
else()
  check_language(CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    if(LLMK_CUDA STREQUAL "ON")
      message(FATAL_ERROR "LLMK_CUDA=ON but no CUDA compiler was found (set CUDACXX or PATH)")
    endif()
    set(LLMK_NO_CUDA_REASON "nvcc was not found at build time")
  endif()
endif()

if(LLMK_NO_CUDA_REASON STREQUAL "" AND NOT LLMK_CUDA_EMULATION)
  # We pass -gencode ourselves: the list includes 'a' targets and must not depend on what this
  # CMake version knows about the installed toolkit.
  set(CMAKE_CUDA_ARCHITECTURES OFF)
  enable_language(CUDA)
  set(LLMK_CUDA_GENCODE "")
  set(llmk_arch_names "")
  foreach(arch IN LISTS LLMK_CUDA_ARCHS)
    list(APPEND LLMK_CUDA_GENCODE "-gencode=arch=compute_${arch},code=sm_${arch}")
    list(APPEND llmk_arch_names "sm_${arch}")
  endforeach()
  if(NOT LLMK_CUDA_PTX STREQUAL "")
    list(APPEND LLMK_CUDA_GENCODE "-gencode=arch=compute_${LLMK_CUDA_PTX},code=compute_${LLMK_CUDA_PTX}")
    list(APPEND llmk_arch_names "compute_${LLMK_CUDA_PTX}")
  endif()
  string(REPLACE ";" "," LLMK_CUDA_ARCH_CSV "${llmk_arch_names}")
  message(STATUS "llm-kernels: CUDA ${CMAKE_CUDA_COMPILER_VERSION}, targets ${LLMK_CUDA_ARCH_CSV}")
elseif(NOT LLMK_CUDA_EMULATION)
  message(WARNING "llm-kernels: building WITHOUT CUDA: ${LLMK_NO_CUDA_REASON}. "
                  "The CPU kernels are built; the CUDA backend will report this reason at run time.")
endif()

# Adds the .cu sources to target, or the stubs that report LLMK_NO_CUDA_REASON.
function(llmk_add_cuda_sources target)
  if(LLMK_CUDA_EMULATION)
    llmk_add_emulated_cuda_sources(${target} ${ARGN})
    return()
  endif()
  if(NOT LLMK_NO_CUDA_REASON STREQUAL "")
    target_sources(${target} PRIVATE ${LLMK_ROOT}/native/src/cuda_unavailable.cpp)
    target_compile_definitions(${target} PRIVATE "LLMK_NO_CUDA_REASON=\"${LLMK_NO_CUDA_REASON}\"")
    return()
  endif()
  target_sources(${target} PRIVATE ${ARGN})
  set_target_properties(${target} PROPERTIES CUDA_ARCHITECTURES OFF CUDA_STANDARD 17
                        CUDA_RUNTIME_LIBRARY Static CUDA_SEPARABLE_COMPILATION OFF)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:${LLMK_CUDA_GENCODE} -O3 -Xcompiler=-fvisibility=hidden>)
  target_compile_definitions(${target} PRIVATE "LLMK_CUDA_ARCH_LIST=\"${LLMK_CUDA_ARCH_CSV}\"")
endfunction()
