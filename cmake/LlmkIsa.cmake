# Per-ISA objects: each source is compiled once per CPU variant with that variant's flags and
# namespace (LLMK_ISA_NS); cpu/isa_dispatch.cpp picks one variant at load time.
#
# Guard against the classic multiversioning bug: an inline or template function emitted as a
# weak (COMDAT) symbol by an AVX-512 object can be picked by the linker for the baseline code
# too, and then crash with SIGILL on older CPUs. After building, check-isa-objects.cmake fails
# the build if a variant object defines a weak symbol outside llmk::<variant>.
set(LLMK_ISA_VARIANTS x86_64 avx2 avx512)
# Exactly the features cpu/isa_dispatch.cpp checks before choosing a variant (no -march=...:
# that would also allow BMI, LZCNT, MOVBE... which the run-time check does not guarantee).
set(LLMK_ISA_FLAGS_x86_64 -march=x86-64 -mtune=generic)
set(LLMK_ISA_FLAGS_avx2 -march=x86-64 -mtune=generic -mavx2 -mfma -mf16c)
set(LLMK_ISA_FLAGS_avx512 -march=x86-64 -mtune=generic -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl
    -mavx512dq -mprefer-vector-width=512)

function(llmk_add_isa_variants target)
  set(objects "")
  foreach(variant IN LISTS LLMK_ISA_VARIANTS)
    set(lib ${target}_isa_${variant})
    add_library(${lib} OBJECT ${ARGN})
    target_include_directories(${lib} PRIVATE ${LLMK_ROOT}/native/include ${LLMK_ROOT}/native/src)
    target_compile_definitions(${lib} PRIVATE LLMK_ISA_NS=${variant})
    target_compile_options(${lib} PRIVATE -O3 -Wall -Wextra ${LLMK_ISA_FLAGS_${variant}})
    target_link_libraries(${lib} PRIVATE OpenMP::OpenMP_CXX)
    target_sources(${target} PRIVATE $<TARGET_OBJECTS:${lib}>)
    list(APPEND objects $<TARGET_OBJECTS:${lib}>)
  endforeach()
  add_custom_command(TARGET ${target} PRE_LINK
    COMMAND ${CMAKE_COMMAND} "-DOBJECTS=${objects}" "-DVARIANTS=${LLMK_ISA_VARIANTS}" -DNM=${CMAKE_NM}
            -P ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/check-isa-objects.cmake
    COMMAND_EXPAND_LISTS
    VERBATIM)
endfunction()
