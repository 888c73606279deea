using System.Net;
using System.Text;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Integration;

/// <summary>OTLP export, when configured: the gateway pushes its instruments to the collector.</summary>
[Collection(ServicesCollection.Name)]
public sealed class OtlpExportTests(ServicesFixture services)
{
    [Fact]
    public async Task Configured_otlp_endpoint_receives_the_gateways_instruments_over_http_protobuf()
    {
        int port = ServiceProcess.FreePort();
        using var collector = new HttpListener { Prefixes = { $"http://127.0.0.1:{port}/" } };
        collector.Start();
        using var dir = new TempDir("otlp");
        var registryPath = Registries.Write(Registries.Environment("env-0001"), dir.File("devices.json"));
        await using var gateway = await GatewayRunner.StartAsync(services.Broker.Url, services.Influx.Url, ServicesFixture.NewDatabase("otlp"),
            registryPath,
            $"--Gateway:Telemetry:OtlpEndpoint=http://127.0.0.1:{port}",
            "--Gateway:Telemetry:OtlpProtocol=http/protobuf",
            "--Gateway:Telemetry:OtlpIntervalSeconds=1");

        // The first export that carries the gateway's meter; the protobuf holds names as UTF-8.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        string? path = null;
        string body = "";
        while (!body.Contains("gateway.frames.received", StringComparison.Ordinal))
        {
            var context = await collector.GetContextAsync().WaitAsync(timeout.Token);
            path = context.Request.Url!.AbsolutePath;
            using (var read = new MemoryStream())
            {
                await context.Request.InputStream.CopyToAsync(read, timeout.Token);
                body = Encoding.UTF8.GetString(read.ToArray());
            }
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/x-protobuf";
            context.Response.Close();
        }
        Assert.Equal("/v1/metrics", path);
        Assert.Contains("CityGateway", body);
        Assert.Contains("gateway.journal.pending", body);
    }
}
