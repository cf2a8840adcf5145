#!/usr/bin/env python3
"""PyTorch baselines on the GPU for the shapes of `llm-kernels-bench.jar gpubench`.

Gather: keep half of a Llama-3.1-8B layer's BF16 K cache per head (8 KV heads, head dim 128),
with torch.gather, next to a device-to-device copy of the same bytes. Timed with CUDA events,
mean over 50 calls after 5 warm-up calls.

Cross-entropy (the baseline of the fused cut cross-entropy): BF16 E [N, D] ~ N(0, 1) and
C [V, D] ~ N(0, 1/D) plus a Zipf(1.5) unigram prior on the last hidden unit (LM-like logits, as
Workloads.lmHead), Zipf targets with ~10% set to -100; logits = E @ C.T in BF16, F.cross_entropy(logits.float(), targets, ignore_index=-100)
(mean), then backward for dE and dC in BF16. `eager` and `compile` (torch.compile of the same
function, mode default, compiled and warmed up before timing). `fwd` runs the forward with
autograd recording (what training pays before backward); `fwdbwd` adds loss.backward().
Median and minimum of per-call CUDA-event timings over 10 calls after 3 warm-ups; peak_MiB is
torch.cuda.max_memory_allocated during one call minus the memory allocated before it (inputs
excluded; logits, autograd buffers and gradients included).

2:4 (sp24): Y = X W^T in BF16 with W magnitude-pruned to 2:4, cuBLAS dense F.linear against
torch.sparse.to_sparse_semi_structured, the shapes of GpuSparse24Bench (see sp24()).

Prints tables; exits 0 with a note when torch or a GPU is missing, and prints a line instead of
crashing when torch.compile or a shape fails (no triton, out of memory).
"""
import os
import sys
import traceback

try:
    import torch
except ImportError:
    print("torch baselines skipped: PyTorch is not installed")
    sys.exit(0)

WARMUP, ITERS = 5, 50
CCE_WARMUP, CCE_ITERS = 3, 10
CCE_SHAPES = [(8192, 2304, 256000), (4096, 512, 32000)]


def time_ms(fn, warmup=None, iters=None):
    warmup = WARMUP if warmup is None else warmup
    iters = ITERS if iters is None else iters
    for _ in range(warmup):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


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


def cce_inputs(n, d, v, seed):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    # LM-like logits (as Workloads.lmHead): N(0, 1) noise plus a Zipf(1.5) unigram prior riding on
    # the last hidden unit; targets drawn from the same Zipf law.
    e = torch.randn(n, d, device="cuda", generator=gen)
    e[:, d - 1] = 1.0
    e = e.to(torch.bfloat16)
    c = torch.randn(v, d, device="cuda", generator=gen) * (1.0 / d ** 0.5)
    ranks = torch.arange(1, v + 1, device="cuda", dtype=torch.float32)
    c[:, d - 1] = -1.5 * torch.log(ranks)
    c = c.to(torch.bfloat16)
    zipf = ranks.pow(-1.5)
    targets = torch.multinomial(zipf / zipf.sum(), n, replacement=True, generator=gen)
    ignored = torch.rand(n, device="cuda", generator=gen) < 0.1
    targets[ignored] = -100
    return e.requires_grad_(), c.requires_grad_(), targets


def cce_loss(e, c, targets):
    logits = e @ c.T
    return torch.nn.functional.cross_entropy(logits.float(), targets, ignore_index=-100)


def cce_step(fn, e, c, targets, backward):
    e.grad = None
    c.grad = None
    loss = fn(e, c, targets)
    if backward:
        loss.backward()
    return loss


def time_each_ms(call):
    for _ in range(CCE_WARMUP):
        call()
    torch.cuda.synchronize()
    ms = []
    for _ in range(CCE_ITERS):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        call()
        end.record()
        end.synchronize()
        ms.append(start.elapsed_time(end))
    return sorted(ms)


def peak_mib(call):
    """Peak allocated during one call, minus what was allocated before it (the inputs)."""
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    call()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2 ** 20


def cce():
    print()
    print(f"{'cce BF16 NxDxV':20} {'impl':8} {'pass':7} {'median_ms':>10} {'min_ms':>10} {'peak_MiB':>10} {'loss':>10}")
    compiled = None
    compile_error = None
    try:
        compiled = torch.compile(cce_loss)  # mode default
    except Exception as ex:  # noqa: BLE001 - any failure becomes a line, not a crash
        compile_error = ex
    for n, d, v in CCE_SHAPES:
        shape = f"{n}x{d}x{v}"
        try:
            e, c, targets = cce_inputs(n, d, v, 13)
        except Exception as ex:  # noqa: BLE001
            print(f"{shape:20} inputs failed: {type(ex).__name__}: {str(ex).splitlines()[0]}")
            continue
        impls = [("eager", cce_loss), ("compile", compiled)]
        if hasattr(torch, "_dynamo"):
            torch._dynamo.reset()  # fresh compile per shape (no dynamic-shape recompile)
        for name, fn in impls:
            if fn is None:
                print(f"{shape:20} {name:8} torch.compile unavailable: {type(compile_error).__name__}: {compile_error}")
                continue
            for backward in (False, True):
                pass_name = "fwdbwd" if backward else "fwd"
                step = lambda: cce_step(fn, e, c, targets, backward)  # noqa: E731
                try:
                    if name == "compile":
                        step()  # compile here, outside the timing (the warm-ups follow)
                        torch.cuda.synchronize()
                    ms = time_each_ms(step)
                    mib = peak_mib(step)
                    loss = step().item()
                    median = (ms[len(ms) // 2] + ms[(len(ms) - 1) // 2]) / 2
                    print(f"{shape:20} {name:8} {pass_name:7} {median:10.3f} {ms[0]:10.3f} {mib:10.1f} {loss:10.5f}")
                except Exception as ex:  # noqa: BLE001
                    first = str(ex).strip().splitlines()[0] if str(ex).strip() else ""
                    what = "torch.compile failed" if name == "compile" else "failed"
                    print(f"{shape:20} {name:8} {pass_name:7} {what}: {type(ex).__name__}: {first}")
                    if os.environ.get("LLMK_TORCH_TRACEBACK"):
                        traceback.print_exc()
                    if name == "compile":
                        break  # the forward failing to compile says enough
                finally:
                    e.grad = None
                    c.grad = None
                    torch.cuda.empty_cache()
        del e, c, targets
        torch.cuda.empty_cache()


ATTN_SEQS = (8192, 16384, 32768, 65536, 131072)
ATTN_BLOCK = 128


def attn_tile_flops(tiles, d=128, block=ATTN_BLOCK):
    """FLOPs counted per computed tile, 4 * Bq * Bk * d (QK^T and PV), as for the library."""
    return 4.0 * tiles * block * block * d


def attention():
    """Llama-3.1-8B attention layer shapes (B 1, Hq 32, Hkv 8, d 128, BF16): torch SDPA (flash
    backend, dense, causal and non-causal) and FlexAttention (torch.compile'd flex_attention) with
    block masks for causal, sliding window 1024 + 64 sinks, and random 90%-sparse 128x128 blocks.
    TFLOP/s over computed tiles (4 * 128 * 128 * d per tile; FLOPs of dense = all tiles), so the
    numbers compare per computed tile with the library's gpubench attention table."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
        flex = torch.compile(flex_attention)
    except Exception as exc:  # old torch: no FlexAttention
        print(f"attention baselines skipped: {exc}")
        return
    hq, hkv, d = 32, 8, 128
    print(f"{'attention BF16 B1 Hq32 Hkv8 d128':44} {'ms':>9} {'tiles':>9} {'TFLOP/s':>9}")
    for seq in ATTN_SEQS:
        nb = seq // ATTN_BLOCK
        gen = torch.Generator(device="cuda").manual_seed(seq)
        q = torch.randn(1, hq, seq, d, device="cuda", dtype=torch.bfloat16, generator=gen)
        k = torch.randn(1, hkv, seq, d, device="cuda", dtype=torch.bfloat16, generator=gen)
        v = torch.randn(1, hkv, seq, d, device="cuda", dtype=torch.bfloat16, generator=gen)
        kx = k.repeat_interleave(hq // hkv, dim=1)  # SDPA flash wants equal heads
        vx = v.repeat_interleave(hq // hkv, dim=1)
        rows = []
        try:
            with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
                for causal in (False, True):
                    ms = time_ms(lambda: torch.nn.functional.scaled_dot_product_attention(q, kx, vx, is_causal=causal))
                    tiles = nb * nb if not causal else nb * (nb + 1) // 2
                    rows.append((f"sdpa-flash {'causal' if causal else 'dense'} S={seq}", ms, tiles))
        except Exception as exc:
            print(f"sdpa flash S={seq}: {type(exc).__name__}: {exc}")
        rand = torch.rand(nb, nb, generator=torch.Generator().manual_seed(1)) < 0.1
        rand_cuda = rand.to("cuda")
        masks = {
            "causal": lambda b, h, qi, ki: ki <= qi,
            "window1024+sinks64": lambda b, h, qi, ki: ((ki <= qi) & (qi - ki <= 1024)) | (ki < 64),
            "random90%": lambda b, h, qi, ki: rand_cuda[qi // ATTN_BLOCK, ki // ATTN_BLOCK],
        }
        for name, mod in masks.items():
            try:
                bm = create_block_mask(mod, 1, 1, seq, seq, device="cuda", BLOCK_SIZE=ATTN_BLOCK)
                tiles = int(bm.kv_num_blocks.sum().item()) + int(bm.full_kv_num_blocks.sum().item()) \
                    if bm.full_kv_num_blocks is not None else int(bm.kv_num_blocks.sum().item())
                ms = time_ms(lambda: flex(q, k, v, block_mask=bm, enable_gqa=True))
                rows.append((f"flex {name} S={seq}", ms, tiles))
            except Exception as exc:
                print(f"flex {name} S={seq}: {type(exc).__name__}: {str(exc)[:200]}")
        for label, ms, tiles in rows:
            print(f"{label:44} {ms:9.3f} {tiles:9d} {attn_tile_flops(tiles) * hq / ms / 1e9:9.1f}")
        del q, k, v, kx, vx
        torch.cuda.empty_cache()


SP24_SHAPES = [(8192, 8192, 8192), (1, 4096, 4096), (16, 4096, 4096), (4096, 4096, 4096),
               (1, 14336, 4096), (16, 14336, 4096), (4096, 14336, 4096)]


def prune_24(w):
    """Magnitude 2:4 along K: keep the two largest |w| of each group of 4 (as the library's prune)."""
    m, k = w.shape
    groups = w.reshape(m, k // 4, 4)
    keep = groups.abs().float().topk(2, dim=-1).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, keep, True)
    return (groups * mask).reshape(m, k)


def sp24():
    """Y = X W^T in BF16 with W 2:4: cuBLAS dense (F.linear) against torch.sparse
    to_sparse_semi_structured (CUTLASS by default), the shapes of GpuSparse24Bench; CUDA events,
    mean of 20 calls after 3. The semi-structured path needs N a multiple of 8 rows on some
    versions: a failure prints a line."""
    from torch.sparse import to_sparse_semi_structured
    print(f"{'2:4 matmul BF16 (N x M x K)':40} {'dense ms':>10} {'semi ms':>10} {'speedup':>8} {'semi TFLOP/s':>12}")
    for n, m, k in SP24_SHAPES:
        w = prune_24(torch.randn(m, k, device="cuda", dtype=torch.bfloat16))
        x = torch.randn(n, k, device="cuda", dtype=torch.bfloat16)
        dense_ms = time_ms(lambda: torch.nn.functional.linear(x, w), 3, 20)
        try:
            ws = to_sparse_semi_structured(w)
            semi_ms = time_ms(lambda: torch.nn.functional.linear(x, ws), 3, 20)
            print(f"{f'{n} x {m} x {k}':40} {dense_ms:10.4f} {semi_ms:10.4f} {dense_ms / semi_ms:7.2f}x "
                  f"{2.0 * n * m * k / semi_ms / 1e9:12.1f}")
        except Exception as exc:
            print(f"{f'{n} x {m} x {k}':40} {dense_ms:10.4f} semi-structured failed: {type(exc).__name__}: "
                  f"{str(exc)[:160]}")
        del w, x
        ws = None
        torch.cuda.empty_cache()


if __name__ == "__main__":
    if not torch.cuda.is_available():
        print("torch baselines skipped: no CUDA device visible to PyTorch")
        sys.exit(0)
    cases = sys.argv[1:] or ["gather", "cce", "attention", "sp24"]
    if "gather" in cases:
        gather_rows()
    if "cce" in cases:
        if "gather" not in cases:
            print(f"== torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
        cce()
    if "attention" in cases:
        attention()
    if "sp24" in cases:
        sp24()
