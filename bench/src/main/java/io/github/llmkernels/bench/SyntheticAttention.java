package io.github.llmkernels.bench;

import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.HalfFloats;
import io.github.llmkernels.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.IntStream;

/**
 * Synthetic prefill inputs with planted attention patterns: q [1, Hq, S, d], k and v [1, Hkv, S, d]
 * (F32, or BF16 rounded once), such that softmax(QK^T / sqrt(d)) shows, per head, a chosen mixture
 * of attention sinks, local windows, vertical stripes, slash lines and query-dependent blocks over
 * a noise floor, each with a controlled logit size. Deterministic per seed (one
 * {@link SplittableRandom}, split per head in a fixed order, so the result does not depend on the
 * thread count).
 *
 * <h2>Dimension plan</h2>
 * d must be a multiple of 16 and >= 64. Dimensions, in order: a local rotary block of d/2 dims
 * (F_l = d/4 pairs), a slash rotary block of d/4 dims (F_s = d/8 pairs), 1 sink dim, 4 vertical
 * dims, T = d/8 topic dims, and the rest noise (n_noise = d/8 - 5: 11 dims at d 128, 3 at d 64).
 * With {@code c = sqrt(d)} (which undoes the softmax scale), for query i of query head h and
 * key j of its KV head g = h / (Hq / Hkv), the logit {@code q_i . k_j / sqrt(d)} is the sum of:
 *
 * <ul>
 *   <li><b>Local window</b>: key pair f = (cos w_f j, sin w_f j), w_f log-spaced over [1/8192, 1]
 *       with a seeded jitter per KV head; query pair f = (lambda_loc c / F_h)(cos w_f i, sin w_f i)
 *       for the F_h frequencies with w_f >= 1/W, else 0. Logit {@code lambda_loc * mean_f cos(w_f
 *       (i - j))}: lambda_loc at distance 0, decaying roughly like log(W / distance) to ~0 at distance W,
 *       then side lobes of standard deviation ~lambda_loc / sqrt(2 F_h) (the rotary kernel of a
 *       few dims cannot be sharper; this is why the local block gets the most dims).
 *   <li><b>Slash lines</b> at offsets s_1..s_n: key pair f = (cos u_f j, sin u_f j), u_f seeded
 *       uniform in [pi/16, pi]; query pair f = (lambda_sl c / F_s) sum_l (cos u_f (i - s_l), sin u_f
 *       (i - s_l)). Logit {@code lambda_sl sum_l mean_f cos(u_f (i - j - s_l))}: lambda_sl on the
 *       diagonals i - j = s_l, a sharp kernel (width ~8), elsewhere pseudo-random side lobes of
 *       standard deviation ~lambda_sl sqrt(n / (2 F_s)) (weak ghost slashes, as real heads show).
 *   <li><b>Sinks</b>: key sink dim 1 for j < n_sink; query lambda_sink c. Logit lambda_sink on the
 *       first n_sink columns for every query.
 *   <li><b>Vertical stripes</b>: a seeded set V of rho_v S key positions (>= n_sink) per KV head,
 *       strengths u_j uniform in [0.5, 1]: logit lambda_v u_j on those columns. The sets of the
 *       profiles sharing a KV head are nested (each key draws one rank in [0, 1); a profile's
 *       stripes are the keys whose rank is below its rho_v), one vertical dim per distinct rho_v
 *       (at most 4 per KV head).
 *   <li><b>Query-dependent blocks</b>: keys are cut into segments of seeded length in [256, 2048],
 *       each with a topic in [0, T); key topic dim topic(j) = 1. Queries in groups of 64 pick a
 *       topic: with probability 1/2 their own segment's, else that of a uniformly chosen earlier
 *       segment; query topic dim = lambda_top c. Logit lambda_top on every key of that topic:
 *       off-diagonal blocks that differ per query block.
 *   <li><b>Noise</b>: key noise dims N(0, 1), query noise dims N(0, nu^2 d / n_noise): logit noise
 *       N(0, nu^2).
 * </ul>
 * v is N(0, 1). KV-side structure (frequencies, stripes, segments, topics) belongs to the KV head;
 * query-side weights to the query head, so the GQA heads of one group differ in pattern while
 * sharing keys, as in real models.
 *
 * <p><b>Length scaling.</b> Every planted lambda (not the noise nu) is multiplied by
 * {@code max(1, ln S / ln 4096)}, the "logn" query scaling of long-context models (Qwen): without
 * it, the noise floor of S keys (mass ~ S e^{nu^2/2}) would swamp fixed-size patterns as S grows;
 * with it each pattern keeps roughly its share of the mass from 4K to 128K.
 *
 * <h2>Head profiles</h2>
 * Query head h uses profile {@code profiles[h mod profiles.size()]} (Hq 8 / Hkv 2 by default, so
 * heads 0-3 share KV head 0 and heads 4-7 KV head 1). lambdas are logits; slash offsets may use S:
 *
 * <pre>
 * #  name                lambda_loc, W   lambda_sl, offsets     lambda_sink (n)  lambda_v, rho_v  lambda_top  nu
 * 0  streaming           12, 64          -                      9 (4)            -                -           1
 * 1  wide-local          8, 1024         -                      6 (4)            -                -           1
 * 2  vertical-slash      6, 64           8, {16, 256, S/8}      6 (4)            7, 0.002         -           1
 * 3  vertical-heavy      5, 64           -                      6 (4)            8, 0.005         -           1
 * 4  query-aware         4, 64           -                      4 (4)            -                7           1
 * 5  mixed               6, 256          6, {64, 512}           6 (4)            6, 0.002         6           1
 * 6  periodic-slash      4, 64           9, {p, 2p, 3p}, p=S/64 4 (4)            -                -           1
 * 7  diffuse             2, 4096         -                      2 (4)            -                -           1
 * </pre>
 *
 * The prefillquality command's {@code --profiles 0,2,4} picks a subset (head h then uses the
 * (h mod 3)-th); an entry that is not a number is a custom profile ({@link Profile#parse}), e.g.
 * {@code --profiles 0,mine:loc=8/128+sink=6/4+top=7}.
 *
 * <p><b>What the heads look like</b> (seed 42, F32, exact softmax of 8 query rows in the second
 * half, S = 32K): share of the mass on the sinks / within the local window W / on the planted
 * vertical stripes / on keys of the query's topic / elsewhere, and the share of keys holding 95%
 * of the mass:
 * <pre>
 * 0 streaming       sinks 0.25, local 0.65, rest 0.10;                     keys for 95%: 0.8%
 * 1 wide-local      sinks 0.07, local 0.42, rest 0.51 (just beyond W);     35%
 * 2 vertical-slash  sinks 0.08, vertical 0.60, rest 0.31 (ghost slashes);  4%
 * 3 vertical-heavy  sinks 0.02, vertical 0.93;                             0.5%
 * 4 query-aware     local 0.14, topic 0.86;                                6%
 * 5 mixed           sinks 0.11, local 0.56, vertical 0.09, topic 0.24;     0.5%
 * 6 periodic-slash  planted slashes 0.93;                                  < 0.1%
 * 7 diffuse         local 0.21, rest 0.79;                                 72%
 * </pre>
 * Side lobes of the rotary kernels form weaker diagonals at offsets of their own ("ghost"
 * slashes; with three planted lines the strongest ghosts reach the planted height): such mass is
 * still diagonal, which vertical-slash and XAttention can find, but A-shape cannot. FlexPrefill's
 * divergence test puts profile 4 near its threshold (sqrt JSD 0.10-0.25 against tau 0.1 from 4K
 * to 32K), because block means of partially covered topic segments differ from the true pooled
 * attention; profile 7 is classified query-aware.
 */
public final class SyntheticAttention {
  /** Bump when the generated numbers change (cache keys of the benchmarks use it). */
  public static final int VERSION = 1;

  private static final int GROUP = 64;
  private static final int MIN_SEGMENT = 256;
  private static final int MAX_SEGMENT = 2048;
  private static final int VERTICAL_DIMS = 4;

  private SyntheticAttention() {}

  /**
   * One head's pattern mixture (logits; 0 disables a component).
   *
   * @param slashes comma-separated diagonal offsets: integers, {@code S/n} or {@code kS/n}
   */
  public record Profile(String name, double local, int window, double slash, String slashes, double sink, int sinks,
      double vertical, double rho, double topic, double noise) {
    public Profile {
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(slashes, "slashes");
      if (window < 1 || sinks < 0 || !(rho >= 0 && rho <= 1) || !(noise >= 0)) {
        throw new IllegalArgumentException("profile " + name + ": window >= 1, sinks >= 0, rho in [0, 1], noise >= 0"
            + " required; got window " + window + ", sinks " + sinks + ", rho " + rho + ", noise " + noise);
      }
      offsets(slashes, 1 << 20); // validates the syntax
    }

    /** The slash offsets for sequence length seq (those >= seq are dropped). */
    public int[] offsets(int seq) {
      return offsets(slashes, seq);
    }

    private static final Pattern TERM = Pattern.compile("(\\d*)S/(\\d+)|(\\d+)");

    private static int[] offsets(String spec, int seq) {
      List<Integer> out = new ArrayList<>();
      for (String part : spec.split(",")) {
        String p = part.strip();
        if (p.isEmpty()) {
          continue;
        }
        Matcher m = TERM.matcher(p);
        if (!m.matches()) {
          throw new IllegalArgumentException("slash offset '" + p + "' must be an integer, S/n or kS/n");
        }
        long v = m.group(3) != null ? Long.parseLong(m.group(3))
            : (m.group(1).isEmpty() ? 1 : Long.parseLong(m.group(1))) * (long) seq / Long.parseLong(m.group(2));
        if (v < seq) {
          out.add((int) v);
        }
      }
      return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /**
     * {@code name:loc=10/64+sl=8/16;256;S/8+sink=6/4+v=7/0.002+top=6+nu=1} (parts joined by '+',
     * slash offsets by ';', so a profile fits in a comma-separated list; omitted parts are 0, with
     * window 64, sinks 4, rho_v 0.002 and nu 1 by default).
     */
    public static Profile parse(String text) {
      String[] nameRest = text.split(":", 2);
      double loc = 0;
      int window = 64;
      double sl = 0;
      String offs = "";
      double sink = 0;
      int sinks = 4;
      double v = 0;
      double rho = 0;
      double top = 0;
      double nu = 1;
      if (nameRest.length == 2) {
        for (String kv : nameRest[1].split("\\+")) {
          String[] p = kv.split("=", 2);
          if (p.length != 2) {
            throw new IllegalArgumentException("profile part '" + kv + "' must be key=value");
          }
          String[] a = p[1].split("/", 2);
          switch (p[0].strip()) {
            case "loc" -> {
              loc = Double.parseDouble(a[0]);
              window = a.length > 1 ? Integer.parseInt(a[1]) : window;
            }
            case "sl" -> {
              sl = Double.parseDouble(a[0]);
              offs = a.length > 1 ? p[1].substring(p[1].indexOf('/') + 1).replace(';', ',') : "";
            }
            case "sink" -> {
              sink = Double.parseDouble(a[0]);
              sinks = a.length > 1 ? Integer.parseInt(a[1]) : sinks;
            }
            case "v" -> {
              v = Double.parseDouble(a[0]);
              rho = a.length > 1 ? Double.parseDouble(a[1]) : 0.002;
            }
            case "top" -> top = Double.parseDouble(a[0]);
            case "nu" -> nu = Double.parseDouble(a[0]);
            default -> throw new IllegalArgumentException("profile key '" + p[0] + "' must be loc, sl, sink, v, top or nu");
          }
        }
      }
      return new Profile(nameRest[0].strip(), loc, window, sl, offs, sink, sinks, v, rho, top, nu);
    }
  }

  /** The eight profiles of the class documentation. */
  public static final List<Profile> PROFILES = List.of(
      new Profile("streaming", 12, 64, 0, "", 9, 4, 0, 0, 0, 1),
      new Profile("wide-local", 8, 1024, 0, "", 6, 4, 0, 0, 0, 1),
      new Profile("vertical-slash", 6, 64, 8, "16,256,S/8", 6, 4, 7, 0.002, 0, 1),
      new Profile("vertical-heavy", 5, 64, 0, "", 6, 4, 8, 0.005, 0, 1),
      new Profile("query-aware", 4, 64, 0, "", 4, 4, 0, 0, 7, 1),
      new Profile("mixed", 6, 256, 6, "64,512", 6, 4, 6, 0.002, 6, 1),
      new Profile("periodic-slash", 4, 64, 9, "S/64,2S/64,3S/64", 4, 4, 0, 0, 0, 1),
      new Profile("diffuse", 2, 4096, 0, "", 2, 4, 0, 0, 0, 1));

  /** What to generate. */
  public record Config(int seq, int headsQ, int headsKv, int dim, DType dtype, long seed, List<Profile> profiles) {
    public Config {
      profiles = List.copyOf(profiles);
      if (seq < 1 || headsQ < 1 || headsKv < 1 || headsQ % headsKv != 0) {
        throw new IllegalArgumentException("seq >= 1, heads >= 1 and headsKv dividing headsQ required; got seq " + seq
            + ", heads " + headsQ + "/" + headsKv);
      }
      if (dim < 64 || dim % 16 != 0) {
        throw new IllegalArgumentException("dim must be a multiple of 16 and >= 64; got " + dim);
      }
      if (dtype != DType.F32 && dtype != DType.BF16 && dtype != DType.F16) {
        throw new IllegalArgumentException("dtype must be F32, F16 or BF16; got " + dtype);
      }
      if (profiles.isEmpty()) {
        throw new IllegalArgumentException("profiles must not be empty");
      }
    }

    /** Hq 8 / Hkv 2, d 128, BF16, seed 42, the eight profiles. */
    public static Config defaults(int seq) {
      return new Config(seq, 8, 2, 128, DType.BF16, 42, PROFILES);
    }

    public Profile profile(int head) {
      return profiles.get(head % profiles.size());
    }
  }

  /** The generated tensors (host); closing closes all three. */
  public record Inputs(Tensor q, Tensor k, Tensor v) implements AutoCloseable {
    @Override
    public void close() {
      q.close();
      k.close();
      v.close();
    }
  }

  /** Dimension offsets of the plan for head dim d. */
  private record Plan(int d, int localPairs, int slashPairs, int local, int slash, int sink, int vertical, int topic,
      int topics, int noise, int noiseDims) {
    static Plan of(int d) {
      int localPairs = d / 4;
      int slashPairs = d / 8;
      int local = 0;
      int slash = 2 * localPairs;
      int sink = slash + 2 * slashPairs;
      int vertical = sink + 1;
      int topic = vertical + VERTICAL_DIMS;
      int topics = d / 8;
      int noise = topic + topics;
      return new Plan(d, localPairs, slashPairs, local, slash, sink, vertical, topic, topics, noise, d - noise);
    }
  }

  /** Structure of one KV head, shared by its query heads. */
  private record KvHead(double[] localFreq, double[] slashFreq, int sinks, double[] rhoLadder, double[] rank,
      double[] strength, int[] segStart, int[] segTopic) {
    int segment(int pos) {
      int s = Arrays.binarySearch(segStart, pos);
      return s >= 0 ? s : -s - 2;
    }
  }

  /** Generates q, k, v for the configuration (seconds at 32K x 8 heads x d 128). */
  public static Inputs generate(Config c) {
    Plan plan = Plan.of(c.dim());
    SplittableRandom root = new SplittableRandom(c.seed());
    SplittableRandom[] kvRng = new SplittableRandom[c.headsKv()];
    SplittableRandom[] qRng = new SplittableRandom[c.headsQ()];
    for (int g = 0; g < kvRng.length; g++) {
      kvRng[g] = root.split();
    }
    for (int h = 0; h < qRng.length; h++) {
      qRng[h] = root.split();
    }
    int group = c.headsQ() / c.headsKv();
    KvHead[] kv = new KvHead[c.headsKv()];
    for (int g = 0; g < kv.length; g++) {
      kv[g] = kvHead(c, plan, g, group, kvRng[g]);
    }
    double gain = Math.max(1, Math.log(c.seq()) / Math.log(4096));
    long s = c.seq();
    int d = c.dim();
    Tensor q = Tensor.allocate(c.dtype(), Device.CPU, 1, c.headsQ(), s, d);
    Tensor k = null;
    Tensor v = null;
    try {
      k = Tensor.allocate(c.dtype(), Device.CPU, 1, c.headsKv(), s, d);
      v = Tensor.allocate(c.dtype(), Device.CPU, 1, c.headsKv(), s, d);
      ByteBuffer[] qHeads = new ByteBuffer[c.headsQ()];
      ByteBuffer[] kHeads = new ByteBuffer[c.headsKv()];
      ByteBuffer[] vHeads = new ByteBuffer[c.headsKv()];
      // KV heads first (their rngs already drew the structure), each head on its own thread.
      IntStream.range(0, c.headsKv()).parallel().forEach(g -> {
        kHeads[g] = buffer(c);
        vHeads[g] = buffer(c);
        fillKeys(c, plan, kv[g], kvRng[g], kHeads[g], vHeads[g]);
      });
      IntStream.range(0, c.headsQ()).parallel().forEach(h -> {
        qHeads[h] = buffer(c);
        fillQueries(c, plan, c.profile(h), kv[h / group], gain, qRng[h], qHeads[h]);
      });
      copyHeads(q, qHeads, c);
      copyHeads(k, kHeads, c);
      copyHeads(v, vHeads, c);
      return new Inputs(q, k, v);
    } catch (RuntimeException e) {
      q.close();
      if (k != null) {
        k.close();
      }
      if (v != null) {
        v.close();
      }
      throw e;
    }
  }

  private static ByteBuffer buffer(Config c) {
    return ByteBuffer.allocateDirect(Math.multiplyExact(Math.multiplyExact(c.seq(), c.dim()), c.dtype().byteSize()))
        .order(ByteOrder.LITTLE_ENDIAN);
  }

  private static void copyHeads(Tensor dst, ByteBuffer[] heads, Config c) {
    long per = (long) c.seq() * c.dim();
    for (int h = 0; h < heads.length; h++) {
      try (Tensor src = Tensor.wrap(heads[h], c.dtype(), per)) {
        dst.copyElements(src, 0, h * per, per);
      }
    }
  }

  private static void put(ByteBuffer b, DType dtype, int index, double x) {
    switch (dtype) {
      case F32 -> b.putFloat(4 * index, (float) x);
      case F16 -> b.putShort(2 * index, HalfFloats.floatToF16((float) x));
      default -> b.putShort(2 * index, HalfFloats.floatToBf16((float) x));
    }
  }

  private static KvHead kvHead(Config c, Plan plan, int g, int group, SplittableRandom rng) {
    double[] localFreq = new double[plan.localPairs()];
    double lo = Math.log(1.0 / 8192);
    for (int f = 0; f < localFreq.length; f++) {
      double t = (f + 0.3 * (rng.nextDouble() - 0.5)) / Math.max(1, localFreq.length - 1);
      localFreq[f] = Math.exp(lo * (1 - Math.min(1, Math.max(0, t))));
    }
    double[] slashFreq = new double[plan.slashPairs()];
    for (int f = 0; f < slashFreq.length; f++) {
      slashFreq[f] = Math.PI / 16 + rng.nextDouble() * (Math.PI - Math.PI / 16);
    }
    int sinks = 0;
    TreeSet<Double> rhos = new TreeSet<>();
    for (int h = g * group; h < (g + 1) * group; h++) {
      Profile p = c.profile(h);
      sinks = Math.max(sinks, p.sinks());
      if (p.vertical() != 0 && p.rho() > 0) {
        rhos.add(p.rho());
      }
    }
    if (rhos.size() > VERTICAL_DIMS) {
      throw new IllegalArgumentException("the query heads of KV head " + g + " use " + rhos.size()
          + " distinct rho_v values; at most " + VERTICAL_DIMS + " are supported");
    }
    int seq = c.seq();
    double[] rank = new double[seq];
    double[] strength = new double[seq];
    for (int j = 0; j < seq; j++) {
      rank[j] = j < sinks ? 2 : rng.nextDouble();
      strength[j] = 0.5 + 0.5 * rng.nextDouble();
    }
    List<Integer> starts = new ArrayList<>();
    List<Integer> topics = new ArrayList<>();
    for (int pos = 0; pos < seq; pos += rng.nextInt(MIN_SEGMENT, MAX_SEGMENT + 1)) {
      starts.add(pos);
      topics.add(rng.nextInt(plan.topics()));
    }
    return new KvHead(localFreq, slashFreq, sinks, rhos.stream().mapToDouble(Double::doubleValue).toArray(), rank,
        strength, starts.stream().mapToInt(Integer::intValue).toArray(),
        topics.stream().mapToInt(Integer::intValue).toArray());
  }

  private static void fillKeys(Config c, Plan plan, KvHead kv, SplittableRandom rng, ByteBuffer kb, ByteBuffer vb) {
    int d = c.dim();
    DType dt = c.dtype();
    double[] row = new double[d];
    for (int j = 0; j < c.seq(); j++) {
      Arrays.fill(row, 0);
      for (int f = 0; f < plan.localPairs(); f++) {
        row[plan.local() + 2 * f] = Math.cos(kv.localFreq()[f] * j);
        row[plan.local() + 2 * f + 1] = Math.sin(kv.localFreq()[f] * j);
      }
      for (int f = 0; f < plan.slashPairs(); f++) {
        row[plan.slash() + 2 * f] = Math.cos(kv.slashFreq()[f] * j);
        row[plan.slash() + 2 * f + 1] = Math.sin(kv.slashFreq()[f] * j);
      }
      row[plan.sink()] = j < kv.sinks() ? 1 : 0;
      double lower = 0;
      for (int m = 0; m < kv.rhoLadder().length; m++) {
        double r = kv.rank()[j];
        row[plan.vertical() + m] = r >= lower && r < kv.rhoLadder()[m] ? kv.strength()[j] : 0;
        lower = kv.rhoLadder()[m];
      }
      row[plan.topic() + kv.segTopic()[kv.segment(j)]] = 1;
      for (int t = plan.noise(); t < d; t++) {
        row[t] = rng.nextGaussian();
      }
      for (int t = 0; t < d; t++) {
        put(kb, dt, j * d + t, row[t]);
        put(vb, dt, j * d + t, rng.nextGaussian());
      }
    }
  }

  private static void fillQueries(Config c, Plan plan, Profile p, KvHead kv, double gain, SplittableRandom rng,
      ByteBuffer qb) {
    int d = c.dim();
    double root = Math.sqrt(d);
    DType dt = c.dtype();
    int activeLocal = 0;
    for (double w : kv.localFreq()) {
      activeLocal += w >= 1.0 / p.window() ? 1 : 0;
    }
    double aLocal = activeLocal == 0 ? 0 : gain * p.local() * root / activeLocal;
    int[] offsets = p.slash() == 0 ? new int[0] : p.offsets(c.seq());
    double aSlash = gain * p.slash() * root / plan.slashPairs();
    // cos/sin(u_f s_l), so that cos(u (i - s)) = cos(u i) cos(u s) + sin(u i) sin(u s)
    double[][] cs = new double[plan.slashPairs()][offsets.length];
    double[][] sn = new double[plan.slashPairs()][offsets.length];
    for (int f = 0; f < plan.slashPairs(); f++) {
      for (int l = 0; l < offsets.length; l++) {
        cs[f][l] = Math.cos(kv.slashFreq()[f] * offsets[l]);
        sn[f][l] = Math.sin(kv.slashFreq()[f] * offsets[l]);
      }
    }
    int ladder = -1; // vertical dims 0..ladder carry this profile's stripes
    for (int m = 0; m < kv.rhoLadder().length; m++) {
      if (p.vertical() != 0 && kv.rhoLadder()[m] <= p.rho()) {
        ladder = m;
      }
    }
    double noiseStd = plan.noiseDims() == 0 ? 0 : p.noise() * Math.sqrt((double) d / plan.noiseDims());
    double[] row = new double[d];
    int topic = 0;
    for (int i = 0; i < c.seq(); i++) {
      if (i % GROUP == 0) {
        int own = kv.segment(i);
        int seg = own == 0 || rng.nextBoolean() ? own : rng.nextInt(own);
        topic = kv.segTopic()[seg];
      }
      Arrays.fill(row, 0);
      for (int f = 0; f < plan.localPairs(); f++) {
        double w = kv.localFreq()[f];
        if (w >= 1.0 / p.window()) {
          row[plan.local() + 2 * f] = aLocal * Math.cos(w * i);
          row[plan.local() + 2 * f + 1] = aLocal * Math.sin(w * i);
        }
      }
      if (offsets.length > 0) {
        for (int f = 0; f < plan.slashPairs(); f++) {
          double ci = Math.cos(kv.slashFreq()[f] * i);
          double si = Math.sin(kv.slashFreq()[f] * i);
          double x = 0;
          double y = 0;
          for (int l = 0; l < offsets.length; l++) {
            x += ci * cs[f][l] + si * sn[f][l]; // cos(u (i - s))
            y += si * cs[f][l] - ci * sn[f][l]; // sin(u (i - s))
          }
          row[plan.slash() + 2 * f] = aSlash * x;
          row[plan.slash() + 2 * f + 1] = aSlash * y;
        }
      }
      row[plan.sink()] = gain * p.sink() * root;
      for (int m = 0; m <= ladder; m++) {
        row[plan.vertical() + m] = gain * p.vertical() * root;
      }
      row[plan.topic() + topic] = gain * p.topic() * root;
      for (int t = plan.noise(); t < d; t++) {
        row[t] = noiseStd * rng.nextGaussian();
      }
      for (int t = 0; t < d; t++) {
        put(qb, dt, i * d + t, row[t]);
      }
    }
  }
}
