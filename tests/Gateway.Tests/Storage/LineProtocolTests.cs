using System.Buffers;
using System.Globalization;
using System.Text;
using CityGateway.Core;
using CityGateway.Storage.Influx;

namespace CityGateway.Tests.Storage;

public class LineProtocolTests
{
    private const long Ts = 1_700_000_000_123_456_789;

    private static Point P(string measurement, (string, string)[] tags, params PointField[] fields)
    {
        var p = new Point(measurement, tags.Select(t => new KeyValuePair<string, string>(t.Item1, t.Item2)).ToArray(), Ts);
        p.Fields.AddRange(fields);
        return p;
    }

    private static string Line(PointField field) => LineProtocol.ToLine(P("m", [], field));

    [Fact]
    public void Full_line_has_measurement_tags_fields_and_nanosecond_time()
    {
        var p = P("traffic", [("device", "tc-01"), ("city", "metropolis"), ("lane", "2")],
            PointField.Of("intensity", 12.0), PointField.Of("seq", 3L), PointField.Of("ok", true), PointField.Of("note", "fine"));

        Assert.Equal("traffic,city=metropolis,device=tc-01,lane=2 intensity=12,seq=3i,ok=true,note=\"fine\" 1700000000123456789",
            LineProtocol.ToLine(p));
    }

    [Fact]
    public void Write_ends_the_line_with_a_newline()
    {
        var buffer = new ArrayBufferWriter<byte>();
        LineProtocol.Write(buffer, P("m", [], PointField.Of("f", 1L)));
        LineProtocol.Write(buffer, P("m", [], PointField.Of("f", 2L)));
        Assert.Equal($"m f=1i {Ts}\nm f=2i {Ts}\n", Encoding.UTF8.GetString(buffer.WrittenSpan));
    }

    [Fact]
    public void Tags_are_sorted_by_key_ordinally()
    {
        var p = P("m", [("site", "s"), ("b", "1"), ("a", "2"), ("Z", "3"), ("city", "c")], PointField.Of("f", 1.5));
        Assert.Equal($"m,Z=3,a=2,b=1,city=c,site=s f=1.5 {Ts}", LineProtocol.ToLine(p));
    }

    [Fact]
    public void Empty_tag_values_are_omitted()
    {
        var p = P("m", [("site", ""), ("city", "c"), ("district", "")], PointField.Of("f", 1.5));
        Assert.Equal($"m,city=c f=1.5 {Ts}", LineProtocol.ToLine(p));
    }

    [Theory]
    [InlineData("traffic flow", @"traffic\ flow")]
    [InlineData("a,b", @"a\,b")]
    [InlineData("a=b", "a=b")]               // '=' needs no escape in a measurement
    [InlineData("a\"b", "a\"b")]
    [InlineData("pré", "pré")]
    public void Measurement_escapes_comma_and_space(string measurement, string expected)
    {
        Assert.Equal($"{expected} f=1i {Ts}", LineProtocol.ToLine(P(measurement, [], PointField.Of("f", 1L))));
    }

    [Theory]
    [InlineData("a b", @"a\ b")]
    [InlineData("a,b", @"a\,b")]
    [InlineData("a=b", @"a\=b")]
    [InlineData(" ,=", @"\ \,\=")]
    [InlineData("a\"b", "a\"b")]             // quotes are literal in names
    [InlineData("Zürich", "Zürich")]
    public void Tag_keys_tag_values_and_field_keys_escape_comma_equals_and_space(string name, string escaped)
    {
        var p = P("m", [(name, name)], PointField.Of(name, 1L));
        Assert.Equal($"m,{escaped}={escaped} {escaped}=1i {Ts}", LineProtocol.ToLine(p));
    }

    [Theory]
    [InlineData(@"a\b", @"a\b")]                // a lone backslash is written as is
    [InlineData(@"C:\temp\x", @"C:\temp\x")]
    [InlineData(@"a\", @"a\\")]                 // at the end of a name it is doubled
    [InlineData(@"a\ b", @"a\\\ b")]            // before a character that is escaped, too
    [InlineData(@"a\,b", @"a\\\,b")]
    [InlineData(@"a\=b", @"a\\\=b")]
    [InlineData(@"a\\b", @"a\\\b")]             // before another backslash, so that pairs stay pairs
    [InlineData(@"a\\", @"a\\\\")]
    public void Backslashes_in_names_are_doubled_only_where_needed(string name, string escaped)
    {
        var p = P("m", [("k", name)], PointField.Of(name, 1L));
        Assert.Equal($"m,k={escaped} {escaped}=1i {Ts}", LineProtocol.ToLine(p));
    }

    [Fact]
    public void Backslashes_in_a_measurement_follow_the_measurement_rules()
    {
        Assert.Equal($@"m\\\ x f=1i {Ts}", LineProtocol.ToLine(P(@"m\ x", [], PointField.Of("f", 1L))));
        Assert.Equal($@"m\=x f=1i {Ts}", LineProtocol.ToLine(P(@"m\=x", [], PointField.Of("f", 1L))));
        Assert.Equal($@"m\\ f=1i {Ts}", LineProtocol.ToLine(P(@"m\", [], PointField.Of("f", 1L))));
    }

    [Theory]
    [InlineData("say \"hi\"", "\"say \\\"hi\\\"\"")]
    [InlineData(@"C:\temp", "\"C:\\\\temp\"")]
    [InlineData(@"end\", "\"end\\\\\"")]
    [InlineData("a, b=c", "\"a, b=c\"")]     // commas, spaces and '=' are literal inside quotes
    [InlineData("", "\"\"")]
    [InlineData("naïve ☃", "\"naïve ☃\"")]
    public void String_values_escape_quote_and_backslash(string value, string expected)
    {
        Assert.Equal($"m f={expected} {Ts}", Line(PointField.Of("f", value)));
    }

    [Theory]
    [InlineData(0L, "0i")]
    [InlineData(42L, "42i")]
    [InlineData(-7L, "-7i")]
    [InlineData(long.MaxValue, "9223372036854775807i")]
    [InlineData(long.MinValue, "-9223372036854775808i")]
    public void Integers_have_the_i_suffix(long value, string expected)
    {
        Assert.Equal($"m f={expected} {Ts}", Line(PointField.Of("f", value)));
    }

    [Fact]
    public void Booleans_are_true_and_false()
    {
        Assert.Equal($"m a=true,b=false {Ts}", LineProtocol.ToLine(P("m", [], PointField.Of("a", true), PointField.Of("b", false))));
    }

    [Theory]
    [InlineData(0.1, "0.1")]
    [InlineData(21.5, "21.5")]
    [InlineData(12.0, "12")]
    [InlineData(-3.25, "-3.25")]
    [InlineData(0.30000000000000004, "0.30000000000000004")]
    [InlineData(1.7976931348623157e308, "1.7976931348623157E+308")]
    [InlineData(5e-324, "5E-324")]
    [InlineData(1e21, "1E+21")]
    public void Floats_use_round_trip_formatting(double value, string expected)
    {
        Assert.Equal($"m f={expected} {Ts}", Line(PointField.Of("f", value)));
    }

    [Fact]
    public void Points_of_a_series_are_written_as_any_other_point()
    {
        // The normaliser's points carry their series' prepared text and take a faster path.
        KeyValuePair<string, string>[] Tags() => [new("site", "pump 7"), new("city", "lumen"), new("device", "wat,01")];
        PointField[][] cases =
        [
            [PointField.Of("flow", 87.94800000000001), PointField.Of("seq", 3L), PointField.Of("ok", true), PointField.Of("off", false)],
            [PointField.Of("field with space", 1.5), PointField.Of("a=b", -2.25)],
            [PointField.Of("note", "a \"quoted\" \\ text"), PointField.Of("level", 0.001)],
            [PointField.Of("température", 21.5)],
            [],
        ];
        foreach (var fields in cases)
        {
            var plain = new Point("water", Tags(), Ts);
            plain.Fields.AddRange(fields);
            var series = new Point(new Series("water", Tags()), Ts);
            series.Fields.AddRange(fields);
            Assert.Equal(LineProtocol.ToLine(plain), LineProtocol.ToLine(series));
        }
    }

    [Fact]
    public void Floats_are_written_as_round_trip_formatting_would_write_them()
    {
        // Whole numbers and values with a few decimals take a faster path; its text must be the same.
        var random = new Random(20261121);
        var values = new List<double> { 0, -0.0, 1e12, -1e12, 999999999999.999, 1e-3, -1e-3, 0.0005, 1e15, 123.456, -0.05 };
        for (int i = 0; i < 20_000; i++)
        {
            double magnitude = Math.Pow(10, random.Next(-4, 14));
            double raw = (random.NextDouble() - 0.5) * magnitude;
            values.Add(raw);
            values.Add(Math.Round(raw, random.Next(0, 4)));
            values.Add(Math.Round(raw, random.Next(0, 4)) * 0.1);
        }
        foreach (var v in values)
            Assert.Equal($"m f={v.ToString("R", CultureInfo.InvariantCulture)} {Ts}", Line(PointField.Of("f", v)));
    }

    [Theory]
    [InlineData(Math.PI)]
    [InlineData(1.0 / 3)]
    [InlineData(20 * 46.0055 / 24.45)]
    [InlineData(-273.15)]
    [InlineData(123456789.123456789)]
    public void Floats_parse_back_to_the_same_double(double value)
    {
        var line = Line(PointField.Of("f", value));
        var text = line["m f=".Length..line.LastIndexOf(' ')];
        Assert.Equal(value, double.Parse(text, CultureInfo.InvariantCulture));
    }

    [Theory]
    [InlineData("a\nb", @"a\ b")]
    [InlineData("a\tb", @"a\ b")]
    [InlineData("a\rb\u0000", @"a\ b\ ")]
    [InlineData("a\\\nb", @"a\\\ b")]        // backslash before a control character is doubled
    public void Control_characters_in_names_become_escaped_spaces(string name, string escaped)
    {
        var p = P("m", [("k", name)], PointField.Of(name, 1L));
        Assert.Equal($"m,k={escaped} {escaped}=1i {Ts}", LineProtocol.ToLine(p));
        Assert.Equal($"{escaped} f=1i {Ts}", LineProtocol.ToLine(P(name, [], PointField.Of("f", 1L))));
    }

    [Fact]
    public void Negative_timestamps_are_written_as_is()
    {
        var p = new Point("m", [], -1_000_000_000);
        p.Fields.Add(PointField.Of("f", 1L));
        Assert.Equal("m f=1i -1000000000", LineProtocol.ToLine(p));
    }
}
