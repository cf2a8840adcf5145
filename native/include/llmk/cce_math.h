/* Per-row arithmetic of the cut cross-entropy, shared by the CPU and CUDA kernels (LLMK_HD) so
 * both backends compute the loss, the gradient coefficients and the filter test identically.
 *
 * For a valid row i with upstream weight w (d loss_total / d loss_i) and upstream lse gradient
 * dl, the gradient of the total with respect to the (capped) logit z_ij is
 *   g_ij = p_ij * a_i - b_i * [j == t_i] - u_i,      p_ij = exp(z_ij - lse_i)
 *   a_i  = w * (1 + 2 * zl * lse_i) + dl,   b_i = w * (1 - ls),   u_i = w * ls / V_total
 * and, with softcap, g is multiplied by 1 - (z_ij / cap)^2 before it reaches E, C and bias.
 * The kernels apply the uniform -u_i exactly, as rank-one updates outside the logit tiles (so that
 * gradient filtering cannot drop it); with a softcap the tiles keep the remainder +u_i t_ij^2. */
#ifndef LLMK_CCE_MATH_H
#define LLMK_CCE_MATH_H

#include <math.h>
#include <stdint.h>

#include "llmk/host_device.h"

namespace llmk {

/* Options every kernel needs, unpacked from llmk_cce_args. */
struct CceRowParams {
  double label_smoothing;
  double z_loss_scale;
  double inv_vocab_total;  // 1 / V_total
};

/* Target of row i after the shift; returns ignore_index when i + shift runs past n. */
template <typename T>
LLMK_HD int64_t cce_target(const T* targets, int64_t i, int64_t n, int64_t shift, int64_t ignore_index) {
  const int64_t pos = i + shift;
  return pos < n ? static_cast<int64_t>(targets[pos]) : ignore_index;
}

/* loss_i from the row's statistics (all over the whole vocabulary). */
LLMK_HD float cce_row_loss(const CceRowParams& p, float lse, float target_logit, float sum_logits) {
  const double l = lse;
  double loss = (1.0 - p.label_smoothing) * (l - target_logit);
  if (p.label_smoothing != 0.0) loss += p.label_smoothing * (l - sum_logits * p.inv_vocab_total);
  if (p.z_loss_scale != 0.0) loss += p.z_loss_scale * l * l;
  return static_cast<float>(loss);
}

/* Gradient coefficients of one row (see the header comment). */
struct CceRowGrad {
  float a;      // multiplies p_ij
  float b;      // subtracted at the target column
  float u;      // subtracted everywhere (label smoothing's uniform part)
  float scale;  // filter scale max(|a|, |b|, |u|): a tile is skipped when every |g_ij| < eps * scale
};

LLMK_HD CceRowGrad cce_row_grad(const CceRowParams& p, float lse, float w, float dlse) {
  CceRowGrad g;
  g.a = static_cast<float>(w * (1.0 + 2.0 * p.z_loss_scale * lse) + dlse);
  g.b = static_cast<float>(w * (1.0 - p.label_smoothing));
  g.u = static_cast<float>(w * p.label_smoothing * p.inv_vocab_total);
  const float aa = fabsf(g.a), bb = fabsf(g.b), uu = fabsf(g.u);
  g.scale = aa > bb ? aa : bb;
  g.scale = g.scale > uu ? g.scale : uu;
  return g;
}

/* Softcap applied to a raw logit (cap > 0). */
LLMK_HD float cce_softcap(float x, float cap) { return cap * tanhf(x / cap); }

/* Weight of row i's loss in the reduced total: 1 (SUM), 1/valid (MEAN), grad_loss[i] (NONE). */
LLMK_HD float cce_row_weight(int64_t reduction, const float* grad_loss, int64_t i, int64_t valid_rows) {
  if (reduction == 0) return grad_loss[i];
  const float g = grad_loss[0];
  return reduction == 2 ? static_cast<float>(static_cast<double>(g) / static_cast<double>(valid_rows)) : g;
}

}  // namespace llmk
#endif
