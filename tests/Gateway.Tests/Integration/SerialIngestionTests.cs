using System.Collections.Concurrent;
using System.Text.Json;
using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;
using Xunit.Abstractions;

namespace CityGateway.Tests.Integration;

/// <summary>
/// Serial instruments on real pseudo-terminal pairs (socat): the simulator writes lines at one end,
/// the gateway reads the other, and InfluxDB must hold exactly the intact lines.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class SerialIngestionTests(ServicesFixture services, ITestOutputHelper output)
{
    internal static string[] PortArgs(string path, string format, string checksum = "Required", int index = 0) =>
    [
        $"--Gateway:Serial:Ports:{index}:Name=instrument{index}",
        $"--Gateway:Serial:Ports:{index}:Path={path}",
        $"--Gateway:Serial:Ports:{index}:BaudRate=115200",
        $"--Gateway:Serial:Ports:{index}:Format={format}",
        $"--Gateway:Serial:Ports:{index}:Checksum={checksum}",
        $"--Gateway:Serial:Ports:{index}:ReopenMinMs=100",
        $"--Gateway:Serial:Ports:{index}:ReopenMaxMs=1000",
        .. format switch
        {
            "kv" => new[] { $"--Gateway:Serial:Ports:{index}:DeviceField=dev" },
            "csv" => new[] { "device", "ts", "count", "speed_kmh", "occ_pct", "seq" }.Select((c, i) => $"--Gateway:Serial:Ports:{index}:Columns:{i}={c}")
                .Append($"--Gateway:Serial:Ports:{index}:TimestampFormat=unix_ms").ToArray(),
            _ => Array.Empty<string>(),
        },
    ];

    internal static async Task<JsonElement> PortStatus(GatewayRunner gateway)
    {
        var (_, body) = await gateway.GetJsonAsync("/readyz");
        return body.GetProperty("serial")[0];
    }

    [Theory]
    [InlineData("kv")]
    [InlineData("csv")]
    [InlineData("jsonl")]
    public async Task Seeded_serial_fleet_arrives_with_canonical_names_and_units(string format)
    {
        using var pty = new PtyPair();
        using var dir = new TempDir("serial-" + format);
        var options = new SerialSimulatorOptions
        {
            Port = pty.DeviceEnd, Format = format, Devices = 5, Rate = 0, MessagesPerDevice = 300, Seed = 17,
            RegistryPath = dir.File("devices.json"),
        };
        FleetSimulator.WriteRegistry(SerialSimulator.BuildRegistry(options), options.RegistryPath);
        var db = ServicesFixture.NewDatabase("serial" + format);
        await using var gateway = await GatewayRunner.StartAsync(services.Broker.Url, services.Influx.Url, db, options.RegistryPath,
            PortArgs(pty.GatewayEnd, format));
        await Wait.UntilAsync(async () => (await PortStatus(gateway)).GetProperty("open").GetBoolean(), TimeSpan.FromSeconds(15), () => "port not open");

        var lines = new ConcurrentBag<SerialLine>();
        var report = await SerialSimulator.RunAsync(options, lines.Add);
        Assert.Equal(1500, report.IntactLines);
        var (measurement, expected) = Assert.Single(report.ExpectedPoints);
        await Wait.UntilAsync(async () => await services.Influx.CountAsync(db, measurement, "seq") >= expected, TimeSpan.FromSeconds(60),
            () => $"{format}: stored {services.Influx.CountAsync(db, measurement, "seq").Result} of {expected}; quarantined {gateway.Quarantine.Total}");
        await Wait.UntilAsync(() => gateway.Metrics.QueueDepth() == 0, TimeSpan.FromSeconds(30), () => "pipeline not drained");
        Assert.Equal(expected, await services.Influx.CountAsync(db, measurement, "seq"));
        Assert.Equal(0, gateway.Quarantine.Total);
        var status = await PortStatus(gateway);
        Assert.Equal(report.LinesWritten, status.GetProperty("lines").GetInt64());
        output.WriteLine($"{format}: {report.LinesWritten} lines, {report.BytesWritten} bytes at {report.LinesPerSecond:F0} lines/s; all stored");

        foreach (var (device, count) in report.ByDevice)
            Assert.Equal(count, await services.Influx.CountAsync(db, measurement, "seq", $"\"device\" = '{device}'"));
        foreach (var line in lines.GroupBy(l => l.Device).Select(g => g.OrderBy(l => l.Sequence).Last()))
        {
            var rows = await services.Influx.RowsAsync(db, $"SELECT * FROM \"{measurement}\" WHERE \"device\" = '{line.Device}' AND \"seq\" = {line.Sequence}");
            var row = Assert.Single(rows);
            ExpectedConversions.AssertRow(line.SourceValues!, row, $"{format} {line.Device}");
            if (line.TimestampNs is { } ts) Assert.Equal(ts, row["time"].GetInt64());
        }
    }

    [Fact]
    public async Task With_five_percent_of_lines_corrupted_every_intact_line_is_stored_and_every_corrupted_one_quarantined()
    {
        using var pty = new PtyPair();
        using var dir = new TempDir("serial-noise");
        var options = new SerialSimulatorOptions
        {
            Port = pty.DeviceEnd, Format = "kv", Devices = 6, Rate = 0, MessagesPerDevice = 500, Seed = 99,
            Noise = 0.05, SplitWrites = 0.1, RegistryPath = dir.File("devices.json"),
        };
        FleetSimulator.WriteRegistry(SerialSimulator.BuildRegistry(options), options.RegistryPath);
        var db = ServicesFixture.NewDatabase("serialnoise");
        await using var gateway = await GatewayRunner.StartAsync(services.Broker.Url, services.Influx.Url, db, options.RegistryPath,
            PortArgs(pty.GatewayEnd, "kv"));
        await Wait.UntilAsync(async () => (await PortStatus(gateway)).GetProperty("open").GetBoolean(), TimeSpan.FromSeconds(15), () => "port not open");

        var lines = new ConcurrentBag<SerialLine>();
        var report = await SerialSimulator.RunAsync(options, lines.Add);
        Assert.True(report.CorruptedLines > 100, $"only {report.CorruptedLines} corrupted lines");
        Assert.True(report.SplitLines > 100, $"only {report.SplitLines} split lines");
        await Wait.UntilAsync(async () => await services.Influx.CountAsync(db, "water", "seq") >= report.IntactLines
                                          && gateway.Quarantine.Total >= report.CorruptedLines,
            TimeSpan.FromSeconds(60),
            () => $"stored {services.Influx.CountAsync(db, "water", "seq").Result} of {report.IntactLines}, quarantined {gateway.Quarantine.Total} of {report.CorruptedLines}");
        await Wait.UntilAsync(() => gateway.Metrics.QueueDepth() == 0, TimeSpan.FromSeconds(30), () => "pipeline not drained");

        Assert.Equal(report.IntactLines, await services.Influx.CountAsync(db, "water", "seq"));
        foreach (var (device, count) in report.ByDevice)
            Assert.Equal(count, await services.Influx.CountAsync(db, "water", "seq", $"\"device\" = '{device}'"));
        var entries = gateway.Quarantine.ReadAll().ToList();
        Assert.Equal(report.CorruptedLines, entries.Count);
        Assert.All(entries, e => Assert.Contains(e.Reason, new[] { "bad_checksum", "invalid_utf8", "malformed_payload", "line_too_long" }));
        // Each corrupted line is in the quarantine as it was received.
        var quarantined = entries.Select(e => e.PayloadEncoding == "base64" ? Convert.FromBase64String(e.Payload!) : System.Text.Encoding.UTF8.GetBytes(e.Payload!))
            .Select(Convert.ToHexString).Order().ToList();
        var corrupted = lines.Where(l => !l.Intact).Select(l => Convert.ToHexString(Trim(l.Text))).Order().ToList();
        Assert.Equal(corrupted, quarantined);
        output.WriteLine($"noise: {report.LinesWritten} lines ({report.SplitLines} split), intact {report.IntactLines} all stored, " +
                         $"corrupted {report.CorruptedLines} ({string.Join(", ", report.CorruptedByKind.Select(k => $"{k.Key} {k.Value}"))}) all quarantined: " +
                         string.Join(", ", entries.GroupBy(e => e.Reason).Select(g => $"{g.Key} {g.Count()}")));
    }

    private static byte[] Trim(byte[] line)
    {
        int n = line.Length;
        while (n > 0 && line[n - 1] is (byte)'\n' or (byte)'\r') n--;
        return line[..n];
    }

    [Fact]
    public async Task Gateway_resumes_reading_after_the_pty_is_torn_down_for_ten_seconds()
    {
        using var pty = new PtyPair();
        using var dir = new TempDir("serial-unplug");
        SerialSimulatorOptions Run(int seed) => new()
        {
            Port = pty.DeviceEnd, Format = "csv", Devices = 4, Rate = 400, MessagesPerDevice = 50, Seed = seed,
            RegistryPath = dir.File("devices.json"),
        };
        FleetSimulator.WriteRegistry(SerialSimulator.BuildRegistry(Run(1)), dir.File("devices.json"));
        var db = ServicesFixture.NewDatabase("unplug");
        await using var gateway = await GatewayRunner.StartAsync(services.Broker.Url, services.Influx.Url, db, dir.File("devices.json"),
            PortArgs(pty.GatewayEnd, "csv"));
        await Wait.UntilAsync(async () => (await PortStatus(gateway)).GetProperty("open").GetBoolean(), TimeSpan.FromSeconds(15), () => "port not open");

        var before = await SerialSimulator.RunAsync(Run(1));
        await Wait.UntilAsync(async () => await services.Influx.CountAsync(db, "traffic", "seq") == before.IntactLines,
            TimeSpan.FromSeconds(30), () => "lines before the unplug were not stored");

        pty.Kill();
        await Wait.UntilAsync(async () => !(await PortStatus(gateway)).GetProperty("open").GetBoolean(), TimeSpan.FromSeconds(10),
            () => "the gateway did not notice the port vanishing");
        var (status, body) = await gateway.GetJsonAsync("/readyz");
        Assert.Equal(503, status);
        output.WriteLine("while unplugged: " + body.GetProperty("serial")[0].GetProperty("state").GetString());
        await Task.Delay(TimeSpan.FromSeconds(10)); // the scenario: the device stays away for 10 s
        var away = await PortStatus(gateway);
        Assert.False(away.GetProperty("open").GetBoolean());
        Assert.Equal($"waiting for the device: cannot open {pty.GatewayEnd}: {CityGateway.Sources.Serial.SerialFaults.DeviceGone}", away.GetProperty("state").GetString());

        pty.Start();
        await Wait.UntilAsync(async () => (await PortStatus(gateway)).GetProperty("open").GetBoolean(), TimeSpan.FromSeconds(15),
            () => "the gateway did not reopen the port");
        var after = await SerialSimulator.RunAsync(Run(2));
        long total = before.IntactLines + after.IntactLines;
        await Wait.UntilAsync(async () => await services.Influx.CountAsync(db, "traffic", "seq") == total,
            TimeSpan.FromSeconds(30), () => $"stored {services.Influx.CountAsync(db, "traffic", "seq").Result} of {total}");
        var port = await PortStatus(gateway);
        Assert.Equal(1, port.GetProperty("reopens").GetInt64());
        Assert.Equal(200, (await gateway.GetJsonAsync("/readyz")).Status);
        output.WriteLine($"unplug: {before.IntactLines} lines before, {after.IntactLines} after, all stored; reopened once without a restart");
    }
}
