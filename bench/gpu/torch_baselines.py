#!/usr/bin/env python3
"""PyTorch baselines on the GPU for the shapes of `llm-kernels-bench.jar gpubench`.

Gather: keep half of a Llama-3.1-8B layer's BF16 K cache per head (8 KV heads, head dim 128),
with torch.gather, next to a device-to-device copy of the same bytes. Timed with CUDA events,
mean over 50 calls after 5 warm-up calls. Prints a table; exits 0 with a note when torch or a
GPU is missing.
"""
import sys

try:
    import torch
except ImportError:
    print("torch baselines skipped: PyTorch is not installed")
    sys.exit(0)

WARMUP, ITERS = 5, 50


def time_ms(fn):
    for _ in range(WARMUP):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(ITERS):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / ITERS


def gather_rows():
    heads, dim = 8, 128
    print(f"== torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
    print(f"{'gather BF16 keep 50%':40} {'torch ms':>10} {'GB/s':>10} {'copy ms':>10} {'GB/s':>10}")
    gen = torch.Generator(device="cuda").manual_seed(2)
    for seq in (4096, 32768, 131072):
        kept = seq // 2
        src = torch.randn(1, heads, seq, dim, device="cuda", dtype=torch.bfloat16)
        idx = torch.stack([torch.randperm(seq, device="cuda", generator=gen)[:kept].sort().values
                           for _ in range(heads)]).unsqueeze(0)
        index = idx.unsqueeze(-1).expand(-1, -1, -1, dim)
        out = torch.empty(1, heads, kept, dim, device="cuda", dtype=torch.bfloat16)
        copy_src = torch.empty_like(out)
        gather_ms = time_ms(lambda: torch.gather(src, 2, index, out=out))
        copy_ms = time_ms(lambda: out.copy_(copy_src))
        nbytes = out.numel() * out.element_size()
        label = f"[1,{heads},{seq},{dim}] -> {kept} rows"
        print(f"{label:40} {gather_ms:10.4f} {nbytes / gather_ms / 1e6:10.1f} {copy_ms:10.4f} {nbytes / copy_ms / 1e6:10.1f}")


if __name__ == "__main__":
    if not torch.cuda.is_available():
        print("torch baselines skipped: no CUDA device visible to PyTorch")
        sys.exit(0)
    gather_rows()
