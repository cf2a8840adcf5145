#!/usr/bin/env python3
"""Which CUDA kernels ran on the emulated device.

Usage: kernel_coverage.py CUDA_DIR LOG [LOG ...]

Each LOG is what LLMK_EMU_KERNEL_LOG collected (lines "OFFSET LIBRARY"). The offsets are named
through each library's symbol table (nm -C), reduced to the kernel's name, and compared with the
__global__ functions declared in CUDA_DIR/*.cu and *.cuh. Exit status 1 if a kernel never ran.
"""
import glob
import os
import re
import subprocess
import sys

GLOBAL = re.compile(r"__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*\(")


def declared_kernels(cuda_dir):
    names = set()
    for path in glob.glob(os.path.join(cuda_dir, "*.cu")) + glob.glob(os.path.join(cuda_dir, "*.cuh")):
        with open(path, encoding="utf-8") as f:
            names.update(GLOBAL.findall(f.read()))
    return names


def symbols(lib):
    out = subprocess.run(["nm", "-C", "--defined-only", lib], check=True, capture_output=True, text=True).stdout
    table = {}
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            table[int(parts[0], 16)] = parts[2]
    return table


def base_name(demangled):
    # "void (anonymous namespace)::mma_gemm<1, false>(Params)" -> "mma_gemm"
    s = demangled.replace("(anonymous namespace)", "anon").split("(", 1)[0]
    while "<" in s:  # drop template arguments, innermost first
        s = re.sub(r"<[^<>]*>", "", s)
    return s.split()[-1].split("::")[-1] if s.split() else s


def main():
    cuda_dir, logs = sys.argv[1], sys.argv[2:]
    declared = declared_kernels(cuda_dir)
    ran = set()
    tables = {}
    for log in logs:
        with open(log, encoding="utf-8") as f:
            for line in f:
                offset, lib = line.split(None, 1)
                lib = lib.strip()
                if lib not in tables:
                    tables[lib] = symbols(lib)
                name = tables[lib].get(int(offset, 16))
                if name:
                    ran.add(base_name(name))
    missing = sorted(declared - ran)
    print(f"kernels declared in {cuda_dir}: {len(declared)}; launched on the emulated device: "
          f"{len(declared & ran)}")
    for name in missing:
        print(f"  never launched: {name}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
