using System.Text;
using CityGateway.Decoding;
using CityGateway.Decoding.Serial;
using CityGateway.Routing;
using CityGateway.Sources.Serial;
using static CityGateway.Tests.Decoding.DecoderHarness;

namespace CityGateway.Tests.Decoding;

public sealed class SerialLineDecoderTests
{
    private static TopicRoute Kv(ChecksumPolicy checksum = ChecksumPolicy.Optional) =>
        new() { Source = "serial", Filter = "serial/wq", Format = "kv", DeviceField = "dev", Checksum = checksum };

    private static TopicRoute Csv(ChecksumPolicy checksum = ChecksumPolicy.Optional) => new()
    {
        Source = "serial", Filter = "serial/trf", Format = "csv", Checksum = checksum,
        Columns = ["device", "ts", "count", "speed_kmh", "occ_pct", "lane"],
    };

    [Theory]
    [InlineData("GPGLL,4916.45,N,12311.12,W,225444,A", 0x31)]
    [InlineData("$GPGLL,4916.45,N,12311.12,W,225444,A", 0x31)]
    public void Checksum_is_the_xor_of_the_bytes_after_an_optional_dollar(string line, int expected)
    {
        Assert.Equal(expected, LineChecksum.Compute(Encoding.ASCII.GetBytes(line)));
    }

    [Fact]
    public void Key_value_line_with_a_valid_checksum_decodes()
    {
        var line = LineChecksum.Append("dev=wq-07 ph=7.21 turb=0.8 t=18.4 ok=true note=calibrated");
        var readings = Ok(new KeyValueLineDecoder(), line, Kv(ChecksumPolicy.Required));
        Assert.All(readings, r => Assert.Equal("wq-07", r.DeviceId));
        Assert.Null(readings[0].TimestampNs);
        Assert.Equal(7.21, readings.Single("ph").Number);
        Assert.Equal(0.8, readings.Single("turb").Number);
        Assert.True(readings.Single("ok").Boolean);
        Assert.Equal("calibrated", readings.Single("note").Text);
    }

    [Theory]
    [InlineData("dev=wq-07 ph=7.21*00", "bad_checksum")]
    [InlineData("dev=wq-07 ph=7.21", "bad_checksum")]
    public void Required_checksum_refuses_wrong_and_missing_ones(string line, string reason)
    {
        Assert.Equal(reason, Fails(new KeyValueLineDecoder(), line, Kv(ChecksumPolicy.Required)).Reason);
    }

    [Fact]
    public void Optional_checksum_accepts_lines_without_one_and_refuses_wrong_ones()
    {
        Assert.Equal(7.21, Ok(new KeyValueLineDecoder(), "dev=wq-07 ph=7.21", Kv()).Single("ph").Number);
        Assert.Equal("bad_checksum", Fails(new KeyValueLineDecoder(), "dev=wq-07 ph=7.21*7F", Kv()).Reason);
    }

    [Theory]
    [InlineData("dev=wq-07 ph", "malformed_payload")]
    [InlineData("dev=wq-07 ph=", "malformed_payload")]
    [InlineData("dev=wq-07 ph=1 ph=2", "malformed_payload")]
    [InlineData("ph=7.1 turb=0.3", "missing_device_id")]
    [InlineData("   ", "malformed_payload")]
    public void Broken_key_value_lines_are_refused(string line, string reason)
    {
        Assert.Equal(reason, Fails(new KeyValueLineDecoder(), line, Kv()).Reason);
    }

    [Fact]
    public void Key_value_nan_is_an_invalid_reading()
    {
        var r = Ok(new KeyValueLineDecoder(), "dev=wq-07 ph=NaN t=12", Kv());
        Assert.Equal(ReadingKind.Invalid, r.Single("ph").Kind);
        Assert.Equal("non_finite", r.Single("ph").ErrorReason);
        Assert.Equal(12, r.Single("t").Number);
    }

    [Fact]
    public void Csv_line_maps_declared_columns_device_time_and_tags()
    {
        var readings = Ok(new CsvLineDecoder(), LineChecksum.Append("trf-3,1795264423154,13,47.5,26.1,2"), Csv(ChecksumPolicy.Required));
        Assert.All(readings, r =>
        {
            Assert.Equal("trf-3", r.DeviceId);
            Assert.Equal(1_795_264_423_154_000_000, r.TimestampNs);
            Assert.Equal("2", Assert.Single(r.Tags!, t => t.Key == "lane").Value);
        });
        Assert.Equal(13, readings.Single("count").Number);
        Assert.Equal(26.1, readings.Single("occ_pct").Number);
        Assert.Equal(3, readings.Count);
    }

    [Fact]
    public void Csv_empty_values_are_no_reading_and_a_wrong_column_count_is_refused()
    {
        var readings = Ok(new CsvLineDecoder(), "trf-3,,13,,26.1,", Csv());
        Assert.Equal(["count", "occ_pct"], readings.Select(r => r.Field));
        Assert.Null(readings[0].TimestampNs);
        var error = Fails(new CsvLineDecoder(), "trf-3,1795264423154,13,47.5", Csv());
        Assert.Equal("malformed_payload", error.Reason);
        Assert.Contains("expected 6 columns", error.Detail);
        Assert.Equal("bad_timestamp", Fails(new CsvLineDecoder(), "trf-3,yesterday,13,47.5,26.1,1", Csv()).Reason);
    }

    [Fact]
    public void Json_lines_use_the_flat_json_rules_after_the_checksum()
    {
        var route = new TopicRoute { Source = "serial", Filter = "serial/aq", Format = "jsonl", Checksum = ChecksumPolicy.Required };
        var readings = Ok(new JsonLineDecoder(), LineChecksum.Append("""{"device":"env-s001","pm25":12.1,"temp_f":64.1}"""), route);
        Assert.Equal(12.1, readings.Single("pm25").Number);
        Assert.Equal("bad_checksum", Fails(new JsonLineDecoder(), """{"device":"env-s001","pm25":12.1}*00""", route).Reason);
        Assert.Equal("malformed_payload", Fails(new JsonLineDecoder(), LineChecksum.Append("""{"device":"env-s001","pm25":"""), route).Reason);
    }

    private static List<(string Line, bool Overlong, long Length)> Frame(LineFramer framer, params string[] chunks)
    {
        var lines = new List<(string, bool, long)>();
        foreach (var c in chunks)
            framer.Push(Encoding.Latin1.GetBytes(c), (line, overlong, length) => lines.Add((Encoding.Latin1.GetString(line), overlong, length)));
        return lines;
    }

    [Fact]
    public void Framer_joins_lines_split_across_reads_and_drops_carriage_returns_and_empty_lines()
    {
        var lines = Frame(new LineFramer(64), "dev=a p", "h=1\r", "\n\r\n\ndev=b ph=2\ndev=", "c ph=3\r\n");
        Assert.Equal(["dev=a ph=1", "dev=b ph=2", "dev=c ph=3"], lines.Select(l => l.Line));
        Assert.All(lines, l => Assert.False(l.Overlong));
    }

    [Fact]
    public void Framer_reports_an_overlong_line_once_and_resynchronises_on_the_next_newline()
    {
        var noise = new string('\u0001', 50) + new string('x', 100);
        var lines = Frame(new LineFramer(32), "dev=a ph=1\n", noise[..70], noise[70..], "tail\ndev=b ph=2\n");
        Assert.Equal(3, lines.Count);
        Assert.Equal("dev=a ph=1", lines[0].Line);
        Assert.True(lines[1].Overlong);
        Assert.Equal(32, lines[1].Line.Length);
        Assert.Equal(154, lines[1].Length);
        Assert.Equal("dev=b ph=2", lines[2].Line);
    }
}
