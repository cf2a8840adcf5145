package io.github.llmkernels.bench;

import java.util.List;
import java.util.Locale;

/**
 * The prefill quality plot as a standalone SVG (plain text, no dependency): 960 x 420, two panels
 * against sequence length S (x log2, one tick per measured S, labelled "4K", "32K"): attention-mass
 * recall (y linear from min(0.5, lowest value) to 1, grid every 0.05) and speedup over dense
 * attention (y log2, ticks at powers of two from 0.25 to 64 or wider if needed, a dashed line at 1).
 * One colour per method from a fixed 8-colour palette (cycled), a polyline with circle markers per
 * method and panel, a legend under the panels, and a title. Non-finite values are left out.
 */
public final class SvgPlot {
  static final int WIDTH = 960;
  static final int HEIGHT = 420;
  static final String[] PALETTE = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
      "#17becf"};
  private static final int TOP = 50;
  private static final int BOTTOM = 350;
  private static final int LEFT = 60;
  private static final int PANEL = WIDTH / 2;
  private static final int RIGHT_PAD = 25;

  private SvgPlot() {}

  /** One method: recall and speedup per sequence length (arrays of the same length). */
  public record Series(String name, long[] seq, double[] recall, double[] speedup) {
    public Series {
      if (seq.length != recall.length || seq.length != speedup.length) {
        throw new IllegalArgumentException("series " + name + ": seq, recall and speedup need the same length; got "
            + seq.length + ", " + recall.length + ", " + speedup.length);
      }
    }
  }

  /** The SVG document. */
  public static String render(String title, List<Series> series) {
    long minS = Long.MAX_VALUE;
    long maxS = Long.MIN_VALUE;
    double lowRecall = 1;
    double lowSpeed = Double.POSITIVE_INFINITY;
    double highSpeed = 0;
    java.util.TreeSet<Long> ticks = new java.util.TreeSet<>();
    for (Series s : series) {
      for (int i = 0; i < s.seq().length; i++) {
        if (s.seq()[i] <= 0) {
          throw new IllegalArgumentException("series " + s.name() + ": sequence lengths must be > 0");
        }
        minS = Math.min(minS, s.seq()[i]);
        maxS = Math.max(maxS, s.seq()[i]);
        ticks.add(s.seq()[i]);
        if (Double.isFinite(s.recall()[i])) {
          lowRecall = Math.min(lowRecall, s.recall()[i]);
        }
        if (Double.isFinite(s.speedup()[i]) && s.speedup()[i] > 0) {
          lowSpeed = Math.min(lowSpeed, s.speedup()[i]);
          highSpeed = Math.max(highSpeed, s.speedup()[i]);
        }
      }
    }
    if (ticks.isEmpty()) {
      minS = 1024;
      maxS = 4096;
    }
    double xLo = log2(minS) - (minS == maxS ? 1 : 0.25);
    double xHi = log2(maxS) + (minS == maxS ? 1 : 0.25);
    double yRecallLo = Math.floor(Math.min(0.5, Math.max(0, lowRecall)) * 20) / 20;
    int spLo = (int) Math.floor(Math.min(-2, lowSpeed == Double.POSITIVE_INFINITY ? -2 : log2(lowSpeed)));
    int spHi = (int) Math.ceil(Math.max(6, highSpeed == 0 ? 6 : log2(highSpeed)));

    StringBuilder b = new StringBuilder(16384);
    b.append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    b.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
        + "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">%n", WIDTH, HEIGHT, WIDTH, HEIGHT));
    b.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    b.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">%s</text>%n",
        WIDTH / 2, escape(title)));

    for (int panel = 0; panel < 2; panel++) {
      int x0 = panel * PANEL + LEFT;
      int x1 = (panel + 1) * PANEL - RIGHT_PAD;
      Axis xAxis = new Axis(xLo, xHi, x0, x1);
      Axis yAxis = panel == 0 ? new Axis(yRecallLo, 1.0, BOTTOM, TOP) : new Axis(spLo, spHi, BOTTOM, TOP);
      b.append(String.format(Locale.ROOT, "<g class=\"panel\" id=\"%s\">%n", panel == 0 ? "recall" : "speedup"));
      b.append(String.format(Locale.ROOT,
          "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>%n", x0, TOP, x1 - x0,
          BOTTOM - TOP));
      // horizontal grid and y labels
      if (panel == 0) {
        int steps = (int) Math.round((1.0 - yRecallLo) / 0.05);
        for (int i = 0; i <= steps; i++) {
          double y = yRecallLo + 0.05 * i;
          gridLine(b, x0, x1, yAxis.map(y), false);
          label(b, x0 - 6, yAxis.map(y) + 4, String.format(Locale.ROOT, "%.2f", y), "end");
        }
        axisTitle(b, panel, "attention-mass recall");
      } else {
        for (int e = spLo; e <= spHi; e++) {
          gridLine(b, x0, x1, yAxis.map(e), e == 0);
          label(b, x0 - 6, yAxis.map(e) + 4, e >= 0 ? Long.toString(1L << e)
              : new java.math.BigDecimal(Math.scalb(1.0, e)).toPlainString(), "end");
        }
        axisTitle(b, panel, "speedup over dense attention (log2)");
      }
      for (long s : ticks) {
        double x = xAxis.map(log2(s));
        b.append(String.format(Locale.ROOT, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>%n", x,
            TOP, x, BOTTOM));
        label(b, x, BOTTOM + 16, lengthLabel(s), "middle");
      }
      label(b, (x0 + x1) / 2.0, BOTTOM + 34, "sequence length S (log2)", "middle");
      for (int m = 0; m < series.size(); m++) {
        Series s = series.get(m);
        double[] ys = panel == 0 ? s.recall() : s.speedup();
        String colour = PALETTE[m % PALETTE.length];
        StringBuilder pts = new StringBuilder();
        StringBuilder marks = new StringBuilder();
        for (int i = 0; i < s.seq().length; i++) {
          double y = ys[i];
          if (!Double.isFinite(y) || (panel == 1 && y <= 0)) {
            continue;
          }
          double px = xAxis.map(log2(s.seq()[i]));
          double py = yAxis.map(panel == 0 ? Math.max(y, yRecallLo) : log2(y));
          pts.append(String.format(Locale.ROOT, "%.1f,%.1f ", px, py));
          marks.append(String.format(Locale.ROOT, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\">"
              + "<title>%s S=%d: %.4f</title></circle>%n", px, py, colour, escape(s.name()), s.seq()[i], y));
        }
        b.append(String.format(Locale.ROOT, "<polyline class=\"series\" data-method=\"%s\" fill=\"none\" "
            + "stroke=\"%s\" stroke-width=\"2\" points=\"%s\"/>%n", escape(s.name()), colour, pts.toString().strip()));
        b.append(marks);
      }
      b.append("</g>\n");
    }
    int per = series.isEmpty() ? WIDTH : Math.max(90, (WIDTH - 2 * LEFT) / series.size());
    for (int m = 0; m < series.size(); m++) {
      int x = LEFT + m * per;
      int y = HEIGHT - 18;
      String colour = PALETTE[m % PALETTE.length];
      b.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
          + "stroke-width=\"2\"/><circle cx=\"%d\" cy=\"%d\" r=\"3.5\" fill=\"%s\"/>%n", x, y, x + 24, y, colour,
          x + 12, y, colour));
      label(b, x + 30, y + 4, series.get(m).name(), "start");
    }
    b.append("</svg>\n");
    return b.toString();
  }

  /** Linear map from [lo, hi] to pixels [p0, p1]. */
  private record Axis(double lo, double hi, double p0, double p1) {
    double map(double v) {
      return p0 + (v - lo) / (hi - lo) * (p1 - p0);
    }
  }

  private static void gridLine(StringBuilder b, int x0, int x1, double y, boolean dashed) {
    b.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\"%s/>%n", x0, y,
        x1, y, dashed ? "#444" : "#e5e5e5", dashed ? " stroke-dasharray=\"6,4\" stroke-width=\"1.5\"" : ""));
  }

  private static void label(StringBuilder b, double x, double y, String text, String anchor) {
    b.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">%s</text>%n", x, y, anchor,
        escape(text)));
  }

  private static void axisTitle(StringBuilder b, int panel, String text) {
    double x = panel * PANEL + LEFT + (PANEL - LEFT - RIGHT_PAD) / 2.0;
    label(b, x, TOP - 8, text, "middle");
  }

  /** "4K" for 4096, "128K", "1M"; other lengths as numbers. */
  static String lengthLabel(long s) {
    if (s >= 1 << 20 && s % (1 << 20) == 0) {
      return (s >> 20) + "M";
    }
    if (s >= 1024 && s % 1024 == 0) {
      return (s >> 10) + "K";
    }
    return Long.toString(s);
  }

  private static double log2(double v) {
    return Math.log(v) / Math.log(2);
  }

  /** XML text and attribute escaping. */
  static String escape(String s) {
    StringBuilder b = new StringBuilder(s.length());
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '&' -> b.append("&amp;");
        case '<' -> b.append("&lt;");
        case '>' -> b.append("&gt;");
        case '"' -> b.append("&quot;");
        case '\'' -> b.append("&apos;");
        default -> {
          if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            b.append(' ');
          } else {
            b.append(c);
          }
        }
      }
    }
    return b.toString();
  }
}
