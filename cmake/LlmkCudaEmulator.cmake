# The emulated CUDA build (LLMK_CUDA_EMULATION=ON), included by LlmkCuda.cmake.
#
# llmk_cuda_emu: the emulator and its runtime, a static library linked into the emulated
# libllmkernels.so and into the emulator's own unit tests. It is compiled WITHOUT sanitizer
# instrumentation even in the sanitizer builds: its bookkeeping is shared between fibers by
# design; what it does on a kernel's behalf goes through memcpy/memset, which the sanitizer
# runtimes check as the running fiber's accesses.
set(LLMK_EMU_DIR ${LLMK_ROOT}/cuda/emulator)
add_library(llmk_cuda_emu STATIC
  ${LLMK_EMU_DIR}/fiber.cpp
  ${LLMK_EMU_DIR}/scheduler.cpp
  ${LLMK_EMU_DIR}/collectives.cpp
  ${LLMK_EMU_DIR}/ptx.cpp
  ${LLMK_EMU_DIR}/runtime.cpp)
set_target_properties(llmk_cuda_emu PROPERTIES POSITION_INDEPENDENT_CODE ON)
target_include_directories(llmk_cuda_emu PUBLIC ${LLMK_EMU_DIR} ${LLMK_CUDA_INCLUDE_DIR})
target_link_libraries(llmk_cuda_emu PUBLIC ${CMAKE_DL_LIBS})  # dladdr: LLMK_EMU_KERNEL_LOG
# TLS descriptors (gnu2): the scheduler's thread-locals are read on every threadIdx, barrier and
# collective, and a __tls_get_addr call each time cost ~9%. (initial-exec would be faster still,
# but marks the library STATIC_TLS, which a JVM cannot dlopen.)
set(LLMK_EMU_TLS_FLAGS -mtls-dialect=gnu2)
target_compile_options(llmk_cuda_emu PRIVATE -O2 -Wall -Wextra -fno-strict-aliasing ${LLMK_EMU_TLS_FLAGS})

set(LLMK_EMU_SANITIZE_FLAGS "")
if(LLMK_EMU_SANITIZER STREQUAL "thread")
  set(LLMK_EMU_SANITIZE_FLAGS -fsanitize=thread)
  target_compile_definitions(llmk_cuda_emu PRIVATE LLMK_EMU_SANITIZER_THREAD=1)
elseif(LLMK_EMU_SANITIZER STREQUAL "address")
  # UBSan's alignment check: x86 forgives the misaligned vector loads the GPU would fault on.
  set(LLMK_EMU_SANITIZE_FLAGS -fsanitize=address -fsanitize=alignment -fno-sanitize-recover=alignment
      -fno-omit-frame-pointer)
  target_compile_definitions(llmk_cuda_emu PRIVATE LLMK_EMU_SANITIZER_ADDRESS=1)
elseif(NOT LLMK_EMU_SANITIZER STREQUAL "")
  message(FATAL_ERROR "LLMK_EMU_SANITIZER must be empty, 'thread' or 'address' (got '${LLMK_EMU_SANITIZER}')")
endif()

# Flags for the kernel sources: host C++ with the emulator's CUDA dialect force-included.
# -fno-strict-aliasing: kernels reinterpret bit patterns (a __nv_bfloat162 read as uint32_t) as
# CUDA allows.
set(LLMK_EMU_CU_FLAGS -include ${LLMK_EMU_DIR}/emu.h -fno-strict-aliasing -Wno-unused-parameter -Wno-unknown-pragmas
    ${LLMK_EMU_TLS_FLAGS})
# fmaf() in kernels: an instruction instead of a libm call where the build machine has FMA (the
# emulated library runs only where it is built). No contraction: ISO C++ mode keeps a*b+c apart.
file(READ /proc/cpuinfo llmk_cpuinfo LIMIT 65536)
if(llmk_cpuinfo MATCHES " fma ")
  list(APPEND LLMK_EMU_CU_FLAGS -mfma)
endif()

# Sources compiled as emulated CUDA (the .cu files, and the emulator's own kernel tests).
function(llmk_emulated_cuda_sources)
  set_source_files_properties(${ARGN} PROPERTIES LANGUAGE CXX)
  set_property(SOURCE ${ARGN} APPEND PROPERTY COMPILE_OPTIONS ${LLMK_EMU_CU_FLAGS} ${LLMK_EMU_SANITIZE_FLAGS})
endfunction()

function(llmk_add_emulated_cuda_sources target)
  llmk_emulated_cuda_sources(${ARGN})
  target_sources(${target} PRIVATE ${ARGN})
  target_include_directories(${target} PRIVATE ${LLMK_EMU_DIR} ${LLMK_CUDA_INCLUDE_DIR})
  target_link_libraries(${target} PRIVATE llmk_cuda_emu)
  target_compile_definitions(${target} PRIVATE "LLMK_CUDA_ARCH_LIST=\"emulated\"")
  if(LLMK_EMU_SANITIZE_FLAGS)
    target_link_options(${target} PRIVATE ${LLMK_EMU_SANITIZE_FLAGS})
  endif()
endfunction()
