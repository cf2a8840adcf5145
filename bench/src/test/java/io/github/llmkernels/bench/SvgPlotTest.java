package io.github.llmkernels.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;

/** The plot is well-formed XML with one line per method in each of its two panels. */
class SvgPlotTest {

  @Test
  void twoPanelsOneLinePerMethodEscapedText() throws Exception {
    List<SvgPlot.Series> series = List.of(
        new SvgPlot.Series("xattn8", new long[] {8192, 16384, 32768}, new double[] {0.95, 0.94, 0.95},
            new double[] {1.1, 1.0, 1.2}),
        new SvgPlot.Series("flex <&>", new long[] {8192, 16384, 32768}, new double[] {0.85, 0.73, 0.79},
            new double[] {1.5, 2.2, 3.0}));
    String svg = SvgPlot.render("recall & speed-up <test>", series);
    Document doc = DocumentBuilderFactory.newInstance().newDocumentBuilder()
        .parse(new ByteArrayInputStream(svg.getBytes(StandardCharsets.UTF_8)));
    assertEquals("svg", doc.getDocumentElement().getTagName());
    assertEquals(2 * series.size(), doc.getElementsByTagName("polyline").getLength(), svg);
    assertTrue(svg.contains("flex &lt;&amp;&gt;"), "method names are escaped");
  }
}
