using System.Globalization;
using System.Net;
using System.Text;

namespace CityGateway.Exchange.Transparency;

/// <summary>
/// One chart as inline SVG, drawn on the server: a line per series (our districts solid, the
/// partner's dashed), a value axis with three grid lines, the first and last time on the time
/// axis. The series are already bounded (<see cref="TransparencyReport.MaxSeriesPerChart"/>,
/// <see cref="TransparencyReport.MaxPointsPerSeries"/>), so the drawing is too.
/// </summary>
public static class TransparencyChart
{
    public const int Width = 640, Height = 260;
    private const double Left = 76, Right = 12, Top = 14, Bottom = 40;

    private static readonly string[] Palette = ["#0b57a4", "#c2410c", "#2e7d32", "#7b1fa2", "#00838f", "#ad1457", "#5d4037", "#455a64"];

    public static string Colour(int index) => Palette[index % Palette.Length];

    private static string C(double d) => d.ToString("0.#", CultureInfo.InvariantCulture);

    /// <summary>Runs of points whose gaps are at most twice the line's smallest gap.</summary>
    internal static List<List<(DateTimeOffset Time, double Value)>> Segments(IReadOnlyList<(DateTimeOffset Time, double Value)> points)
    {
        var segments = new List<List<(DateTimeOffset, double)>>();
        long step = long.MaxValue;
        for (int i = 1; i < points.Count; i++)
        {
            long gap = points[i].Time.UtcTicks - points[i - 1].Time.UtcTicks;
            if (gap > 0 && gap < step) step = gap;
        }
        List<(DateTimeOffset, double)>? current = null;
        for (int i = 0; i < points.Count; i++)
        {
            if (current is null || points[i].Time.UtcTicks - points[i - 1].Time.UtcTicks > 2 * step) segments.Add(current = []);
            current.Add(points[i]);
        }
        return segments;
    }

    public static void Svg(StringBuilder sb, ChartView chart, string title, PageFormat f)
    {
        var all = chart.Series.SelectMany(s => s.Points).ToList();
        sb.Append("<svg class=\"plot\" viewBox=\"0 0 ").Append(Width).Append(' ').Append(Height)
          .Append("\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\"><title>").Append(WebUtility.HtmlEncode(title)).Append("</title>");
        if (all.Count == 0)
        {
            sb.Append("</svg>");
            return;
        }
        long t0 = all.Min(p => p.Time.UtcTicks), t1 = all.Max(p => p.Time.UtcTicks);
        double v0 = all.Min(p => p.Value), v1 = all.Max(p => p.Value);
        if (v0 > 0 && v0 < (v1 - v0) * 0.5) v0 = 0;   // start at zero when that keeps most of the height used
        if (v1 - v0 < 1e-9) { v0 -= 1; v1 += 1; }
        if (t1 == t0) { t0 -= TimeSpan.TicksPerHour; t1 += TimeSpan.TicksPerHour; }
        double plotW = Width - Left - Right, plotH = Height - Top - Bottom;
        double X(DateTimeOffset t) => Left + plotW * (t.UtcTicks - t0) / (t1 - t0);
        double Y(double v) => Top + plotH * (1 - (v - v0) / (v1 - v0));

        sb.Append("<g font-size=\"15\" fill=\"#536070\" font-family=\"sans-serif\">");
        for (int i = 0; i <= 2; i++)
        {
            double v = v0 + (v1 - v0) * i / 2, y = Y(v);
            sb.Append("<line x1=\"").Append(C(Left)).Append("\" y1=\"").Append(C(y)).Append("\" x2=\"").Append(C(Width - Right)).Append("\" y2=\"").Append(C(y))
              .Append("\" stroke=\"#e3e8ef\"/><text x=\"").Append(C(Left - 6)).Append("\" y=\"").Append(C(y + 4)).Append("\" text-anchor=\"end\">")
              .Append(WebUtility.HtmlEncode(f.Number(v))).Append("</text>");
        }
        sb.Append("<text x=\"").Append(C(Left)).Append("\" y=\"").Append(C(Height - 12)).Append("\">")
          .Append(WebUtility.HtmlEncode(f.Axis(new DateTimeOffset(t0, TimeSpan.Zero)))).Append("</text>")
          .Append("<text x=\"").Append(C(Width - Right)).Append("\" y=\"").Append(C(Height - 12)).Append("\" text-anchor=\"end\">")
          .Append(WebUtility.HtmlEncode(f.Axis(new DateTimeOffset(t1, TimeSpan.Zero)))).Append(" UTC</text></g>");

        for (int i = 0; i < chart.Series.Count; i++)
        {
            var s = chart.Series[i];
            if (s.Points.Count == 0) continue;
            var label = WebUtility.HtmlEncode(s.CityName + ": " + s.District);
            string style = " stroke=\"" + Colour(i) + "\" stroke-width=\"2\" fill=\"none\"" + (s.Ours ? "" : " stroke-dasharray=\"6 4\"");
            string data = " class=\"series " + (s.Ours ? "ours" : "partner") + "\" data-points=\"" + s.Points.Count.ToString(CultureInfo.InvariantCulture) + "\"";
            // A line is broken where windows are missing (suppressed or refused), not drawn across them.
            foreach (var segment in Segments(s.Points))
            {
                if (segment.Count == 1)
                {
                    var p = segment[0];
                    sb.Append("<circle").Append(data).Append(" cx=\"").Append(C(X(p.Time))).Append("\" cy=\"").Append(C(Y(p.Value))).Append("\" r=\"3\" fill=\"")
                      .Append(Colour(i)).Append("\"><title>").Append(label).Append("</title></circle>");
                    continue;
                }
                sb.Append("<polyline").Append(data).Append(style).Append(" points=\"");
                foreach (var p in segment) sb.Append(C(X(p.Time))).Append(',').Append(C(Y(p.Value))).Append(' ');
                sb.Length--;
                sb.Append("\"><title>").Append(label).Append("</title></polyline>");
            }
        }
        sb.Append("</svg>");
    }
}
