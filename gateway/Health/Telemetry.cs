using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace CityGateway.Health;

/// <summary>Section Gateway:Telemetry: OTLP export of the gateway's metrics (the Prometheus
/// endpoint /metrics on the operator listener is always there).</summary>
public sealed class TelemetryOptions
{
    /// <summary>OTLP collector to push metrics to; empty: no OTLP export, unless the standard
    /// OTEL_EXPORTER_OTLP_ENDPOINT environment variable is set.</summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary>"grpc" (default, port 4317) or "http/protobuf" (port 4318, path /v1/metrics).</summary>
    public string OtlpProtocol { get; set; } = "grpc";

    /// <summary>Seconds between OTLP exports.</summary>
    public int OtlpIntervalSeconds { get; set; } = 60;

    internal bool OtlpFromEnvironment => string.IsNullOrEmpty(OtlpEndpoint)
        && !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT"));
}

internal sealed class TelemetryOptionsValidator : IValidateOptions<TelemetryOptions>
{
    public ValidateOptionsResult Validate(string? name, TelemetryOptions o)
    {
        var errors = new List<string>();
        if (!string.IsNullOrEmpty(o.OtlpEndpoint) && !(Uri.TryCreate(o.OtlpEndpoint, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"))
            errors.Add($"Gateway:Telemetry:OtlpEndpoint: '{o.OtlpEndpoint}' is not an http(s) URL such as http://127.0.0.1:4317");
        if (o.OtlpProtocol is not ("grpc" or "http/protobuf"))
            errors.Add($"Gateway:Telemetry:OtlpProtocol: '{o.OtlpProtocol}' is neither grpc nor http/protobuf");
        if (o.OtlpIntervalSeconds < 1) errors.Add("Gateway:Telemetry:OtlpIntervalSeconds: must be at least 1");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

public static class Telemetry
{
    /// <summary>Path of the Prometheus scrape endpoint on the operator listener.</summary>
    public const string MetricsPath = "/metrics";

    public static void AddGatewayTelemetry(IServiceCollection services, IConfiguration gateway)
    {
        services.AddOptions<TelemetryOptions>().Bind(gateway.GetSection("Telemetry")).ValidateOnStart();
        services.AddSingleton<IValidateOptions<TelemetryOptions>, TelemetryOptionsValidator>();
        var telemetry = gateway.GetSection("Telemetry").Get<TelemetryOptions>() ?? new TelemetryOptions();
        services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("city-gateway"))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(GatewayMetrics.MeterName);
                // Meters are found by name, process-wide: several hosts in one process (the tests)
                // each export their own gateway's instruments only.
                ((IDeferredMeterProviderBuilder)metrics).Configure((sp, b) =>
                {
                    var own = sp.GetRequiredService<IMeterFactory>();
                    b.AddView(i => i.Meter.Name == GatewayMetrics.MeterName && !ReferenceEquals(i.Meter.Scope, own) ? MetricStreamConfiguration.Drop : null);
                });
                metrics.AddPrometheusExporter();
                if (!string.IsNullOrEmpty(telemetry.OtlpEndpoint) || telemetry.OtlpFromEnvironment)
                    metrics.AddOtlpExporter((exporter, reader) =>
                    {
                        reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = Math.Max(1, telemetry.OtlpIntervalSeconds) * 1000;
                        if (string.IsNullOrEmpty(telemetry.OtlpEndpoint)) return;
                        exporter.Protocol = telemetry.OtlpProtocol == "http/protobuf" ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc;
                        exporter.Endpoint = Endpoint(telemetry);
                    });
            });
    }

    /// <summary>The Prometheus scrape endpoint, on the operator listener only.</summary>
    public static void Map(WebApplication app) => app.MapPrometheusScrapingEndpoint(MetricsPath).OnOperatorListener();

    /// <summary>The collector URL; for http/protobuf the signal path is added when none is given, as the
    /// OTEL_EXPORTER_OTLP_ENDPOINT convention does.</summary>
    internal static Uri Endpoint(TelemetryOptions o)
    {
        var uri = new Uri(o.OtlpEndpoint!);
        return o.OtlpProtocol == "http/protobuf" && uri.AbsolutePath is "" or "/" ? new Uri(uri, "v1/metrics") : uri;
    }
}
