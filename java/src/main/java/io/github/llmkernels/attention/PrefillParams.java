package io.github.llmkernels.attention;

import io.github.llmkernels.internal.Check;
import io.github.llmkernels.internal.PrefillArgs;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Shapes;
import io.github.llmkernels.tensor.Tensor;

/**
 * One estimator call with every option resolved against the inputs (the values of
 * llmk_prefill_args): budgets clamped, defaults filled in, FlexPrefill budgets in blocks.
 * Unused fields of a method are 0.
 */
record PrefillParams(PrefillMethod method, int batch, int headsQ, int headsKv, int seqQ, int seqK, int headDim,
    DType dtype, double scale, int blockQ, int blockK, long flags, int lastQ, int verticalSize, int slashSize,
    int forcedColumns, int forcedSlashes, int topK, double gamma, double tau, int minBudgetBlocks,
    int maxBudgetBlocks, int stride, double threshold) {

  int numQBlocks() {
    return (int) ((seqQ + (long) blockQ - 1) / blockQ);
  }

  int numKBlocks() {
    return (int) ((seqK + (long) blockK - 1) / blockK);
  }

  /** Bottom-right alignment: aligned query = q + offset. */
  int offset() {
    return seqK - seqQ;
  }

  /** Last aligned query of query block qb. */
  long last(int qb) {
    return Math.min((long) (qb + 1) * blockQ, seqQ) - 1 + offset();
  }

  /** The key block holding the last aligned query of qb: key blocks 0 .. diag are reachable. */
  int diag(int qb) {
    return (int) (last(qb) / blockK);
  }

  /** VERTICAL_SLASH keeps its columns as a token list (verticalSize per head) beside the tiles. */
  boolean tokenColumns() {
    return (flags & PrefillArgs.COLUMN_TOKENS) != 0;
  }

  /** F32 scores per (batch, query head); see llmk_prefill_scores_size. */
  long scoresPerHead() {
    long tiles = (long) numQBlocks() * numKBlocks();
    return switch (method) {
      case VERTICAL_SLASH -> 2L * seqK;
      case BLOCK_TOP_K, XATTENTION -> tiles;
      case FLEX_PREFILL -> 2L * seqK + numKBlocks() + tiles;
      case A_SHAPE -> 0;
    };
  }

  long methodCode() {
    return switch (method) {
      case VERTICAL_SLASH -> PrefillArgs.VERTICAL_SLASH;
      case BLOCK_TOP_K -> PrefillArgs.BLOCK_TOPK;
      case FLEX_PREFILL -> PrefillArgs.FLEX;
      case XATTENTION -> PrefillArgs.XATTN;
      case A_SHAPE -> throw new IllegalStateException("A-shape has no native estimator");
    };
  }

  /** The C struct without tensor addresses, device and stream. */
  PrefillArgs args() {
    return new PrefillArgs()
        .set(PrefillArgs.METHOD, methodCode()).set(PrefillArgs.BATCH, batch).set(PrefillArgs.HEADS_Q, headsQ)
        .set(PrefillArgs.HEADS_KV, headsKv).set(PrefillArgs.SEQ_Q, seqQ).set(PrefillArgs.SEQ_K, seqK)
        .set(PrefillArgs.HEAD_DIM, headDim).set(PrefillArgs.DTYPE, dtype.code())
        .setDouble(PrefillArgs.SCALE, scale).set(PrefillArgs.BLOCK_Q, blockQ).set(PrefillArgs.BLOCK_K, blockK)
        .set(PrefillArgs.FLAGS, flags).set(PrefillArgs.LAST_Q, lastQ)
        .set(PrefillArgs.VERTICAL_SIZE, verticalSize).set(PrefillArgs.SLASH_SIZE, slashSize)
        .set(PrefillArgs.FORCED_COLUMNS, forcedColumns).set(PrefillArgs.FORCED_SLASHES, forcedSlashes)
        .set(PrefillArgs.TOP_K, topK).setDouble(PrefillArgs.GAMMA, gamma).setDouble(PrefillArgs.TAU, tau)
        .set(PrefillArgs.MIN_BUDGET_BLOCKS, minBudgetBlocks).set(PrefillArgs.MAX_BUDGET_BLOCKS, maxBudgetBlocks)
        .set(PrefillArgs.STRIDE, stride).setDouble(PrefillArgs.THRESHOLD, threshold);
  }

  /**
   * Checks q and k and resolves options against them. Messages name the operation and method,
   * the argument, the rule and the value.
   *
   * @param scaleOverride estimator scale when options.scale() is 0, or 0 for 1/sqrt(d)
   */
  static PrefillParams resolve(String op, Tensor q, Tensor k, PrefillOptions options, double scaleOverride) {
    if (q == null || k == null || options == null) {
      throw new IllegalArgumentException(op + ": " + (q == null ? "q" : k == null ? "k" : "options")
          + " must not be null");
    }
    String where = op + " (" + options.method() + ")";
    q.requireOpen("q");
    k.requireOpen("k");
    Check.rank("q", q, 4, "(B, Hq, Sq, d)");
    Check.rank("k", k, 4, "(B, Hkv, Sk, d)");
    Check.dtype("q", q, DType.F32, DType.F16, DType.BF16);
    Check.sameDType("k", k, "q", q);
    long b = q.shape(0);
    long hq = q.shape(1);
    long d = q.shape(3);
    if (b < 1 || hq < 1 || d < 1 || q.shape(2) < 1) {
      throw new IllegalArgumentException(where + ": q must have B, Hq, Sq and d >= 1; got shape "
          + Shapes.format(q.shape()));
    }
    Check.dim("k", k, 0, b, "B (from q)");
    Check.dim("k", k, 3, d, "d (from q)");
    long hkv = k.shape(1);
    if (hkv < 1 || hq % hkv != 0) {
      throw new IllegalArgumentException(where + ": heads in k (Hkv = " + hkv + ") must divide heads in q (Hq = "
          + hq + ")");
    }
    long sqL = q.shape(2);
    long skL = k.shape(2);
    if (skL > Integer.MAX_VALUE - 8 || b > Integer.MAX_VALUE || hq > Integer.MAX_VALUE || d > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(where + ": sizes must fit int32; got q " + Shapes.format(q.shape())
          + ", k " + Shapes.format(k.shape()));
    }
    if (sqL > skL) {
      throw new IllegalArgumentException(where + ": Sq must be <= Sk (queries are the last Sq of Sk positions); got Sq = "
          + sqL + ", Sk = " + skL);
    }
    q.requireContiguous("q");
    k.requireContiguous("k");
    int sq = (int) sqL;
    int sk = (int) skL;
    int bq = options.blockQ();
    int bk = options.blockK();
    double tiles = (double) b * hq * ((sq + (long) bq - 1) / bq) * ((sk + (long) bk - 1) / bk);
    if (tiles > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(where + ": B x Hq x query blocks x key blocks = "
          + String.format("%.0f", tiles) + " tiles; at most 2^31 - 9 are supported (use larger blocks)");
    }
    double scale = options.scale() != 0 ? options.scale() : scaleOverride != 0 ? scaleOverride : 1.0 / Math.sqrt(d);
    int nkb = (sk + bk - 1) / bk;
    int lastQ = 0;
    int vertical = 0;
    int slash = 0;
    int fc = 0;
    int fs = 0;
    int topK = 0;
    double gamma = 0;
    double tau = 0;
    int minB = 0;
    int maxB = 0;
    int stride = 0;
    double threshold = 0;
    long flags = 0;
    if (options instanceof VerticalSlashOptions o) {
      lastQ = o.resolvedLastQ(sq);
      if (lastQ > sq) {
        throw new IllegalArgumentException(where + ": lastQ must be <= Sq = " + sq + "; got " + lastQ);
      }
      fc = Math.min(o.forcedColumns(), sk);
      fs = Math.min(o.forcedSlashes(), sk);
      vertical = Math.min(sk, Math.max(o.verticalSize(), fc));
      slash = Math.min(sk, Math.max(o.slashSize(), fs));
      // no columns at all: no list, as BLOCKS
      flags = o.columnMode() == VerticalSlashOptions.ColumnMode.TOKENS && vertical > 0 ? PrefillArgs.COLUMN_TOKENS : 0;
    } else if (options instanceof AShapeOptions o) {
      if (o.sinks() > sk) {
        throw new IllegalArgumentException(where + ": sinks must be <= Sk = " + sk + "; got " + o.sinks());
      }
      if (o.local() > sk) {
        throw new IllegalArgumentException(where + ": local must be <= Sk = " + sk + "; got " + o.local());
      }
    } else if (options instanceof BlockTopKOptions o) {
      topK = o.topK();
      flags = o.forceDiagonal() ? PrefillArgs.FORCE_DIAGONAL : 0;
    } else if (options instanceof FlexPrefillOptions o) {
      lastQ = o.resolvedLastQ(sq);
      if (lastQ > sq) {
        throw new IllegalArgumentException(where + ": lastQ must be <= Sq = " + sq + "; got " + lastQ);
      }
      gamma = o.gamma();
      tau = o.tau();
      long block = o.block();
      long maxBlocks = Math.min((o.maxBudget() + block - 1) / block, nkb);
      maxB = (int) maxBlocks;
      minB = (int) Math.min((o.minBudget() + block - 1) / block, maxBlocks);
    } else if (options instanceof XAttentionOptions o) {
      stride = o.stride();
      threshold = o.threshold();
      if ((sk - sq) % stride != 0) {
        throw new IllegalArgumentException(where + ": Sk - Sq must be a multiple of stride = " + stride
            + "; got Sk - Sq = " + (sk - sq));
      }
    }
    return new PrefillParams(options.method(), (int) b, (int) hq, (int) hkv, sq, sk, (int) d, q.dtype(), scale, bq,
        bk, flags, lastQ, vertical, slash, fc, fs, topK, gamma, tau, minB, maxB, stride, threshold);
  }
}
