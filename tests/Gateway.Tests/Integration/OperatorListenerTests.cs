using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Integration;

/// <summary>The two listeners: what an operator can do answers on the operator listener only; /metrics there
/// carries the gateway's instruments in Prometheus text format.</summary>
[Collection(ServicesCollection.Name)]
public sealed partial class OperatorListenerTests(ServicesFixture services)
{
    private const string Key = "operator-key-for-listener-test";

    [Fact]
    public async Task Operator_endpoints_answer_on_the_operator_listener_and_not_on_the_partner_listener()
    {
        using var dir = new TempDir("listeners");
        var registryPath = Registries.Write(Registries.Environment("env-0001"), dir.File("devices.json"));
        await using var gateway = await GatewayRunner.StartAsync(services.Broker.Url, services.Influx.Url, ServicesFixture.NewDatabase("listen"),
            registryPath, "--Gateway:Operations:ApiKey=" + Key);
        Assert.NotEqual(new Uri(gateway.BaseUrl).Port, new Uri(gateway.OperatorUrl).Port);
        using var http = new HttpClient();
        http.DefaultRequestHeaders.Authorization = new("Bearer", Key);

        async Task<HttpStatusCode> Get(string url) => (await http.GetAsync(url)).StatusCode;
        async Task<HttpStatusCode> Replay(string url) =>
            (await http.PostAsJsonAsync(url + "/api/quarantine/replay", new { reason = "unknown_device" })).StatusCode;

        // Partner listener: none of the operator's endpoints, not even with the operator port in the Host header.
        Assert.Equal(HttpStatusCode.NotFound, await Get(gateway.BaseUrl + "/api/quarantine"));
        Assert.Equal(HttpStatusCode.NotFound, await Replay(gateway.BaseUrl));
        Assert.Equal(HttpStatusCode.NotFound, await Get(gateway.BaseUrl + "/metrics"));
        // Not even a 405 that would tell the path exists there.
        Assert.Equal(HttpStatusCode.NotFound, await Get(gateway.BaseUrl + "/api/quarantine/replay"));
        using (var spoofed = new HttpRequestMessage(HttpMethod.Get, gateway.BaseUrl + "/api/quarantine"))
        {
            spoofed.Headers.Host = new Uri(gateway.OperatorUrl).Authority;
            Assert.Equal(HttpStatusCode.NotFound, (await http.SendAsync(spoofed)).StatusCode);
        }
        Assert.Equal(HttpStatusCode.OK, await Get(gateway.BaseUrl + "/healthz"));
        var bare = await http.GetFromJsonAsync<JsonElement>(gateway.BaseUrl + "/readyz");
        Assert.True(bare.GetProperty("ready").GetBoolean());
        Assert.Equal(["ready"], bare.EnumerateObject().Select(p => p.Name));

        // Operator listener: all of them.
        Assert.Equal(HttpStatusCode.OK, await Get(gateway.OperatorUrl + "/api/quarantine"));
        Assert.Equal(HttpStatusCode.OK, await Replay(gateway.OperatorUrl));
        Assert.Equal(HttpStatusCode.OK, await Get(gateway.OperatorUrl + "/metrics"));
        Assert.Equal(HttpStatusCode.OK, await Get(gateway.OperatorUrl + "/healthz"));
        var details = await http.GetFromJsonAsync<JsonElement>(gateway.OperatorUrl + "/readyz");
        Assert.True(details.GetProperty("journal").GetProperty("durable").GetBoolean());
        foreach (var check in new[] { "broker", "influx", "journal", "serial", "exchange" })
            Assert.Equal("Healthy", details.GetProperty("checks").GetProperty(check).GetProperty("status").GetString());
    }

    [Fact]
    public async Task Metrics_endpoint_exports_the_gateways_instruments_in_prometheus_text_format()
    {
        using var dir = new TempDir("metrics");
        var registryPath = Registries.Write(Registries.Environment("env-0001"), dir.File("devices.json"));
        var db = ServicesFixture.NewDatabase("metrics");
        await using var gateway = await GatewayRunner.StartAsync(services.Broker.Url, services.Influx.Url, db, registryPath);
        using var http = new HttpClient();
        async Task<string> Scrape() => await http.GetStringAsync(gateway.OperatorUrl + "/metrics");

        var before = await Scrape();
        Assert.Contains("# TYPE gateway_frames_received_total counter", before);
        Assert.Contains("# HELP gateway_frames_received_total Frames received from the sources", before);
        double received0 = Value(before, "gateway_frames_received_total");

        const int messages = 5;
        long ts = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 5_000;
        using (var pub = await Publisher.ConnectAsync(services.Broker.Url))
        {
            for (int i = 1; i <= messages; i++)
                pub.Publish("city/json/environment/env-0001", $$"""{"device":"env-0001","ts":{{ts + i}},"seq":{{i}},"pm25":{{i}}.5}""");
            pub.Publish("city/json/environment/env-0404", $$"""{"device":"env-0404","ts":{{ts}},"seq":1,"pm25":1.5}""");
            await pub.FlushAsync();
        }
        await Wait.UntilAsync(async () => await services.Influx.CountAsync(db, "environment", "seq") == messages,
            TimeSpan.FromSeconds(30), () => "the readings were not stored");

        string text = "";
        await Wait.UntilAsync(async () =>
        {
            text = await Scrape();
            return Value(text, "gateway_frames_received_total") >= received0 + messages + 1
                   && Value(text, "gateway_points_written_total") >= messages
                   && Value(text, "gateway_quarantined_total", "reason=\"unknown_device\"") == 1;
        }, TimeSpan.FromSeconds(30), () => "the scraped counters did not follow the published frames:\n" + text);
        Assert.Equal(gateway.Metrics.Received, Value(text, "gateway_frames_received_total"));
        Assert.Contains("# TYPE gateway_batch_write_duration_seconds histogram", text);
        Assert.True(Value(text, "gateway_batch_write_duration_seconds_count") >= 1, text);
        Assert.Equal(1, Value(text, "gateway_broker_connected"));
        Assert.Equal(1, Value(text, "gateway_influx_reachable"));
        Assert.Contains("gateway_journal_pending", text);
        Assert.Contains("gateway_journal_size_bytes", text);
    }

    /// <summary>The value of the first sample of <paramref name="metric"/> (with a label containing <paramref name="label"/>);
    /// NaN when absent.</summary>
    private static double Value(string text, string metric, string? label = null)
    {
        foreach (Match m in Sample().Matches(text))
            if (m.Groups["name"].Value == metric && (label is null || m.Groups["labels"].Value.Contains(label, StringComparison.Ordinal)))
                return double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture);
        return double.NaN;
    }

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?<labels>[^}]*)\})? (?<value>\S+)", RegexOptions.Multiline)]
    private static partial Regex Sample();
}
