// CUDA cut cross-entropy against the CPU kernel (the reference) on small ragged problems:
// forward statistics and loss, backward gradients, option combinations, bitwise reproducibility
// of the deterministic mode, and the out-of-range target contract. Without a CUDA device (or a
// library built without CUDA) it prints "SKIP: <reason>" and passes.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "llmk/half_bits.h"
#include "llmk/llmk.h"

#include "cuda_test_util.h"
#include "expect.h"

namespace {

constexpr int64_t kIgnore = -100;

struct Case {
  std::string name;
  int64_t dtype = LLMK_F32;
  int64_t n = 97, v = 507, d = 123;
  int64_t reduction = LLMK_REDUCTION_MEAN;
  int64_t shift = 0;
  int64_t flags = 0;
  double ignore_fraction = 0.0;
  double softcap = 0.0, label_smoothing = 0.0, z_loss = 0.0, filter_eps = 0.0;
  bool bias = false, grad_lse = false;
  bool i32_targets = false;
};

struct Data {
  std::vector<float> e, c, bias, grad_loss, grad_lse;
  std::vector<int64_t> targets;
};

Data make_data(const Case& k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  Data x;
  x.e.resize(k.n * k.d);
  x.c.resize(k.v * k.d);
  for (auto& f : x.e) f = normal(rng) * 0.5f;
  for (auto& f : x.c) f = normal(rng) * 0.5f;
  x.targets.resize(k.n);
  for (int64_t i = 0; i < k.n; ++i) {
    x.targets[i] = unit(rng) < k.ignore_fraction ? kIgnore : static_cast<int64_t>(rng() % k.v);
  }
  // Half of the rows are confident: their target's classifier row is a copy of the row itself
  // (as in Apple's tests), so filtering has tiles to skip.
  for (int64_t i = 0; i < k.n; i += 2) {
    const int64_t pos = i + k.shift;
    if (pos >= k.n || x.targets[pos] == kIgnore) continue;
    for (int64_t j = 0; j < k.d; ++j) x.c[x.targets[pos] * k.d + j] = x.e[i * k.d + j];
  }
  if (k.bias) {
    x.bias.resize(k.v);
    for (auto& f : x.bias) f = normal(rng) * 0.1f;
  }
  x.grad_loss.resize(k.reduction == LLMK_REDUCTION_NONE ? k.n : 1);
  for (auto& f : x.grad_loss) f = 0.5f + static_cast<float>(unit(rng));
  if (k.grad_lse) {
    x.grad_lse.resize(k.n);
    for (auto& f : x.grad_lse) f = static_cast<float>(unit(rng)) * 0.2f;
  }
  return x;
}

std::vector<unsigned char> target_bytes(const Case& k, const std::vector<int64_t>& t) {
  std::vector<unsigned char> out;
  if (k.i32_targets) {
    std::vector<int32_t> t32(t.begin(), t.end());
    out.resize(t32.size() * 4);
    std::memcpy(out.data(), t32.data(), out.size());
  } else {
    out.resize(t.size() * 8);
    std::memcpy(out.data(), t.data(), out.size());
  }
  return out;
}

llmk_cce_args base_args(const Case& k) {
  llmk_cce_args a;
  std::memset(&a, 0, sizeof(a));
  a.struct_bytes = sizeof(a);
  a.n = k.n;
  a.d = k.d;
  a.v = k.v;
  a.vocab_offset = 0;
  a.vocab_total = k.v;
  a.dtype = k.dtype;
  a.target_dtype = k.i32_targets ? LLMK_I32 : LLMK_I64;
  a.ignore_index = kIgnore;
  a.shift = k.shift;
  a.reduction = k.reduction;
  a.flags = k.flags;
  a.softcap = k.softcap;
  a.label_smoothing = k.label_smoothing;
  a.z_loss_scale = k.z_loss;
  a.filter_eps = k.filter_eps;
  a.device = kDevice;
  return a;
}

/* Host and device copies of one problem and all outputs. */
struct Buffers {
  std::vector<unsigned char> e, c, bias, targets;
  DevBuf de, dc, dbias, dtargets, dloss, dlse, dtl, dsl, dgl, dglse, dge, dgc, dgb;
  Buffers(const Case& k, const Data& x)
      : e(encode(x.e, k.dtype)),
        c(encode(x.c, k.dtype)),
        bias(encode(x.bias, k.dtype)),
        targets(target_bytes(k, x.targets)),
        de(static_cast<int64_t>(e.size())),
        dc(static_cast<int64_t>(c.size())),
        dbias(static_cast<int64_t>(bias.size())),
        dtargets(static_cast<int64_t>(targets.size())),
        dloss(4 * (k.reduction == LLMK_REDUCTION_NONE ? k.n : 1)),
        dlse(4 * k.n),
        dtl(4 * k.n),
        dsl(4 * k.n),
        dgl(4 * static_cast<int64_t>(x.grad_loss.size())),
        dglse(4 * static_cast<int64_t>(x.grad_lse.size())),
        dge(static_cast<int64_t>(e.size())),
        dgc(static_cast<int64_t>(c.size())),
        dgb(static_cast<int64_t>(bias.size())) {
    de.upload(e.data());
    dc.upload(c.data());
    dbias.upload(bias.data());
    dtargets.upload(targets.data());
    dgl.upload(x.grad_loss.data());
    dglse.upload(x.grad_lse.data());
  }
};

std::vector<float> download_f32(const DevBuf& b) {
  std::vector<float> out(b.bytes / 4);
  b.download(out.data());
  return out;
}
std::vector<float> download_dtype(const DevBuf& b, int64_t dtype) {
  std::vector<unsigned char> raw(b.bytes);
  b.download(raw.data());
  return decode(raw, dtype);
}
std::vector<unsigned char> download_raw(const DevBuf& b) {
  std::vector<unsigned char> raw(b.bytes);
  b.download(raw.data());
  return raw;
}

void run_case(const Case& k, bool* cpu_available) {
  const Data x = make_data(k, 1234u + static_cast<uint32_t>(k.name.size()));
  Buffers b(k, x);
  const double fwd_tol = k.dtype == LLMK_F32 ? 1e-4 : 2e-2;
  const double bwd_tol = (k.dtype == LLMK_F32 ? 1e-4 : 2e-2) + (k.filter_eps > 0.0 ? 1e-2 : 0.0);
  const int64_t loss_n = k.reduction == LLMK_REDUCTION_NONE ? k.n : 1;

  // ---- forward on both backends
  llmk_cce_args g = base_args(k);
  g.e = b.de.addr();
  g.c = b.dc.addr();
  g.bias = k.bias ? b.dbias.addr() : 0;
  g.targets = b.dtargets.addr();
  g.loss = b.dloss.addr();
  g.lse = b.dlse.addr();
  g.target_logit = b.dtl.addr();
  g.sum_logits = b.dsl.addr();
  int64_t ws = -1;
  EXPECT(llmk_cce_workspace_bytes_cuda(&g, 0, &ws) == LLMK_OK && ws >= 0);
  const int32_t rc = llmk_cce_forward_cuda(&g);
  if (rc != LLMK_OK) std::fprintf(stderr, "[%s] forward_cuda: %s\n", k.name.c_str(), llmk_last_error());
  EXPECT(rc == LLMK_OK);
  const std::vector<float> lse = download_f32(b.dlse), tl = download_f32(b.dtl), sl = download_f32(b.dsl),
                           loss = download_f32(b.dloss);

  std::vector<float> lse_c(k.n), tl_c(k.n), sl_c(k.n), loss_c(loss_n);
  llmk_cce_args h = base_args(k);
  h.e = reinterpret_cast<int64_t>(b.e.data());
  h.c = reinterpret_cast<int64_t>(b.c.data());
  h.bias = k.bias ? reinterpret_cast<int64_t>(b.bias.data()) : 0;
  h.targets = reinterpret_cast<int64_t>(b.targets.data());
  h.loss = reinterpret_cast<int64_t>(loss_c.data());
  h.lse = reinterpret_cast<int64_t>(lse_c.data());
  h.target_logit = reinterpret_cast<int64_t>(tl_c.data());
  h.sum_logits = reinterpret_cast<int64_t>(sl_c.data());
  const int32_t rc_cpu = llmk_cce_forward_cpu(&h);
  if (rc_cpu == LLMK_ERR_UNAVAILABLE) {
    *cpu_available = false;
  } else {
    EXPECT(rc_cpu == LLMK_OK);
    EXPECT(close("lse", k.name, lse, lse_c, fwd_tol));
    EXPECT(close("target_logit", k.name, tl, tl_c, fwd_tol));
    EXPECT(close("sum_logits", k.name, sl, sl_c, fwd_tol));
    EXPECT(close("loss", k.name, loss, loss_c, fwd_tol));
  }
  for (float f : lse) EXPECT(std::isfinite(f));

  // ---- backward, both from the device's lse
  g.grad_loss = b.dgl.addr();
  g.grad_lse = k.grad_lse ? b.dglse.addr() : 0;
  g.grad_e = b.dge.addr();
  g.grad_c = b.dgc.addr();
  g.grad_bias = k.bias ? b.dgb.addr() : 0;
  EXPECT(llmk_cce_workspace_bytes_cuda(&g, 1, &ws) == LLMK_OK && ws >= 0);
  const int32_t rcb = llmk_cce_backward_cuda(&g);
  if (rcb != LLMK_OK) std::fprintf(stderr, "[%s] backward_cuda: %s\n", k.name.c_str(), llmk_last_error());
  EXPECT(rcb == LLMK_OK);
  EXPECT(g.tiles_total > 0 && g.tiles_skipped >= 0 && g.tiles_skipped <= g.tiles_total);
  if (k.filter_eps == 0.0) EXPECT(g.tiles_skipped == 0);
  const std::vector<float> ge = download_dtype(b.dge, k.dtype), gc = download_dtype(b.dgc, k.dtype),
                           gb = download_dtype(b.dgb, k.dtype);

  if (k.flags & LLMK_CCE_DETERMINISTIC) {  // bitwise reproducible
    const auto re = download_raw(b.dge), rcc = download_raw(b.dgc), rb = download_raw(b.dgb);
    EXPECT(llmk_cuda_memset(kDevice, b.dge.p, 0x55, b.dge.bytes, nullptr) == LLMK_OK);
    EXPECT(llmk_cce_backward_cuda(&g) == LLMK_OK);
    EXPECT(download_raw(b.dge) == re);
    EXPECT(download_raw(b.dgc) == rcc);
    EXPECT(download_raw(b.dgb) == rb);
  }

  if (*cpu_available) {
    std::vector<unsigned char> he(b.e.size()), hc(b.c.size()), hb(b.bias.size());
    h.lse = reinterpret_cast<int64_t>(lse.data());
    h.loss = h.target_logit = h.sum_logits = 0;
    h.grad_loss = reinterpret_cast<int64_t>(x.grad_loss.data());
    h.grad_lse = k.grad_lse ? reinterpret_cast<int64_t>(x.grad_lse.data()) : 0;
    h.grad_e = reinterpret_cast<int64_t>(he.data());
    h.grad_c = reinterpret_cast<int64_t>(hc.data());
    h.grad_bias = k.bias ? reinterpret_cast<int64_t>(hb.data()) : 0;
    const int32_t rcb_cpu = llmk_cce_backward_cpu(&h);
    if (rcb_cpu == LLMK_ERR_UNAVAILABLE) {
      *cpu_available = false;
    } else {
      EXPECT(rcb_cpu == LLMK_OK);
      EXPECT(close("grad_e", k.name, ge, decode(he, k.dtype), bwd_tol));
      EXPECT(close("grad_c", k.name, gc, decode(hc, k.dtype), bwd_tol));
      if (k.bias) EXPECT(close("grad_bias", k.name, gb, decode(hb, k.dtype), bwd_tol));
    }
  }
  for (float f : ge) EXPECT(std::isfinite(f));
}

void bad_target_fails_without_writing() {
  Case k;
  k.name = "bad-target";
  k.reduction = LLMK_REDUCTION_NONE;
  Data x = make_data(k, 7);
  x.targets[60] = -5;
  x.targets[37] = k.v + 1000;  // the smallest bad position must be named
  Buffers b(k, x);
  EXPECT(llmk_cuda_memset(kDevice, b.dlse.p, 0x7f, b.dlse.bytes, nullptr) == LLMK_OK);
  EXPECT(llmk_cuda_memset(kDevice, b.dloss.p, 0x7f, b.dloss.bytes, nullptr) == LLMK_OK);
  llmk_cce_args g = base_args(k);
  g.e = b.de.addr();
  g.c = b.dc.addr();
  g.targets = b.dtargets.addr();
  g.loss = b.dloss.addr();
  g.lse = b.dlse.addr();
  EXPECT(llmk_cce_forward_cuda(&g) == LLMK_ERR_OUT_OF_RANGE);
  const std::string want = "targets[37] = " + std::to_string(k.v + 1000);
  EXPECT(std::strstr(llmk_last_error(), want.c_str()) != nullptr);
  for (unsigned char byte : download_raw(b.dlse)) EXPECT(byte == 0x7f);
  for (unsigned char byte : download_raw(b.dloss)) EXPECT(byte == 0x7f);

  // Backward: same verdict, gradients untouched.
  EXPECT(llmk_cuda_memset(kDevice, b.dge.p, 0x7f, b.dge.bytes, nullptr) == LLMK_OK);
  g.loss = 0;
  g.grad_loss = b.dgl.addr();
  g.grad_e = b.dge.addr();
  EXPECT(llmk_cce_backward_cuda(&g) == LLMK_ERR_OUT_OF_RANGE);
  EXPECT(std::strstr(llmk_last_error(), want.c_str()) != nullptr);
  for (unsigned char byte : download_raw(b.dge)) EXPECT(byte == 0x7f);
}

void empty_batch_reductions() {
  Case k;
  k.n = 0;
  DevBuf dc(k.v * k.d * 4), dloss(4);
  std::vector<float> c(k.v * k.d, 0.25f);
  dc.upload(c.data());
  llmk_cce_args g = base_args(k);
  g.n = 0;
  g.c = dc.addr();
  g.loss = dloss.addr();
  g.reduction = LLMK_REDUCTION_MEAN;
  EXPECT(llmk_cce_forward_cuda(&g) == LLMK_OK);
  EXPECT(std::isnan(download_f32(dloss)[0]));  // mean over no valid row, as in PyTorch
  g.reduction = LLMK_REDUCTION_SUM;
  EXPECT(llmk_cce_forward_cuda(&g) == LLMK_OK);
  EXPECT(download_f32(dloss)[0] == 0.0f);
}

}  // namespace

int main() {
  if (!cuda_device_present()) return 0;
  const double eps_bf16 = std::ldexp(1.0, -12);
  std::vector<Case> cases;
  auto add = [&](Case k) { cases.push_back(k); };
  {
    Case k;
    k.name = "f32-none-bias";
    k.reduction = LLMK_REDUCTION_NONE;
    k.bias = true;
    add(k);
    k.name = "f32-mean-ignore-shift-ls-zl-sort";
    k.reduction = LLMK_REDUCTION_MEAN;
    k.ignore_fraction = 0.2;
    k.shift = 1;
    k.label_smoothing = 0.1;
    k.z_loss = 1e-4;
    k.flags = LLMK_CCE_SORT_VOCAB;
    k.i32_targets = true;
    add(k);
    k.name = "f32-sum-softcap-ls-filter-det";
    k.reduction = LLMK_REDUCTION_SUM;
    k.softcap = 30.0;
    k.filter_eps = eps_bf16;
    k.flags = LLMK_CCE_DETERMINISTIC;
    k.i32_targets = false;
    add(k);
    k.name = "f32-none-gradlse-ls-filter-sort-det";
    k.reduction = LLMK_REDUCTION_NONE;
    k.softcap = 0.0;
    k.grad_lse = true;
    k.flags = LLMK_CCE_DETERMINISTIC | LLMK_CCE_SORT_VOCAB;
    add(k);
  }
  {
    Case k;
    k.dtype = LLMK_BF16;
    k.name = "bf16-mean-ignore-filter-sort";
    k.ignore_fraction = 0.2;
    k.filter_eps = eps_bf16;
    k.flags = LLMK_CCE_SORT_VOCAB;
    k.bias = true;
    add(k);
    k.name = "bf16-none-gradlse-softcap-det-fp32acc";
    k.reduction = LLMK_REDUCTION_NONE;
    k.grad_lse = true;
    k.softcap = 30.0;
    k.filter_eps = 0.0;
    k.flags = LLMK_CCE_DETERMINISTIC | LLMK_CCE_FP32_ACCUM;
    add(k);
    k.name = "bf16-sum-ls-zl-shift";
    k.reduction = LLMK_REDUCTION_SUM;
    k.softcap = 0.0;
    k.label_smoothing = 0.1;
    k.z_loss = 1e-4;
    k.shift = 1;
    k.grad_lse = false;
    k.flags = 0;
    add(k);
    // d % 8 == 0: the cp.async path (d = 123 above takes the element-load path).
    k.name = "bf16-d128-mean-ls-filter-fp32acc";
    k.d = 128;
    k.reduction = LLMK_REDUCTION_MEAN;
    k.filter_eps = eps_bf16;
    k.flags = LLMK_CCE_FP32_ACCUM;
    add(k);
    k.name = "bf16-d256-det-sort-softcap";
    k.d = 256;
    k.n = 300;
    k.softcap = 30.0;
    k.label_smoothing = 0.0;
    k.flags = LLMK_CCE_DETERMINISTIC | LLMK_CCE_SORT_VOCAB;
    add(k);
    k.dtype = LLMK_F16;
    k.name = "f16-d128-mean-ignore";
    k.d = 128;
    k.n = 97;
    k.softcap = 0.0;
    k.ignore_fraction = 0.2;
    k.filter_eps = 0.0;
    k.flags = 0;
    add(k);
  }
  bool cpu_available = true;
  for (const Case& k : cases) run_case(k, &cpu_available);
  bad_target_fails_without_writing();
  empty_batch_reductions();
  if (!cpu_available) std::printf("NOTE: CPU reference unavailable; only GPU self-checks ran\n");
  if (failures == 0) std::printf("test_cce_cuda: all passed (%zu cases)\n", cases.size());
  return failures == 0 ? 0 : 1;
}
