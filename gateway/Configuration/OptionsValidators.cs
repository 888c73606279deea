using CityGateway.Decoding;
using CityGateway.Journal;
using CityGateway.Normalisation;
using CityGateway.Pipeline;
using CityGateway.Quarantine;
using CityGateway.Routing;
using CityGateway.Sources.Mqtt;
using CityGateway.Sources.Serial;
using CityGateway.Storage.Influx;
using Microsoft.Extensions.Options;

namespace CityGateway.Configuration;

/// <summary>The configured routes (section Gateway:Routes, a list).</summary>
public sealed class RoutesOptions
{
    public List<TopicRoute> Routes { get; set; } = [];
}

// Each validator names the configuration key at fault, so a wrong setting fails at start-up
// with a message an operator can act on.

internal sealed class MqttOptionsValidator : IValidateOptions<MqttConnectionOptions>
{
    public ValidateOptionsResult Validate(string? name, MqttConnectionOptions o)
    {
        var errors = new List<string>();
        if (!o.Enabled) return ValidateOptionsResult.Success;
        if (string.IsNullOrWhiteSpace(o.Url))
            errors.Add("Gateway:Mqtt:Url: the broker URL is missing (for example mqtt://127.0.0.1:1883)");
        else
        {
            try { o.ParseUrl(); }
            catch (FormatException e) { errors.Add($"Gateway:Mqtt:Url: {e.Message}"); }
        }
        if (string.IsNullOrWhiteSpace(o.ClientId)) errors.Add("Gateway:Mqtt:ClientId: must not be empty (a persistent session is bound to it)");
        if (o.ProtocolVersion is not (4 or 5)) errors.Add($"Gateway:Mqtt:ProtocolVersion: {o.ProtocolVersion} is not 5 or 4 (3.1.1)");
        if (!string.IsNullOrEmpty(o.SharedGroup) && Topics.ValidateShareName(o.SharedGroup) is { } share)
            errors.Add($"Gateway:Mqtt:SharedGroup: {share}; leave it empty for ordinary subscriptions");
        if (o.KeepAliveSeconds < 5) errors.Add("Gateway:Mqtt:KeepAliveSeconds: must be at least 5");
        if (o.ReconnectMinSeconds < 1 || o.ReconnectMaxSeconds < o.ReconnectMinSeconds)
            errors.Add("Gateway:Mqtt:ReconnectMinSeconds/ReconnectMaxSeconds: need 1 <= min <= max");
        foreach (var (key, path) in new[] { ("CaFile", o.Tls.CaFile), ("CertFile", o.Tls.CertFile), ("KeyFile", o.Tls.KeyFile) })
            if (!string.IsNullOrEmpty(path) && !File.Exists(path)) errors.Add($"Gateway:Mqtt:Tls:{key}: file '{path}' does not exist");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class RoutesOptionsValidator(DecoderCatalog decoders, IOptions<MqttConnectionOptions> mqtt, IOptions<SerialOptions> serial)
    : IValidateOptions<RoutesOptions>
{
    public ValidateOptionsResult Validate(string? name, RoutesOptions o)
    {
        var errors = new List<string>();
        if (mqtt.Value.Enabled && o.Routes.Count == 0)
            errors.Add("Gateway:Routes: no routes are configured; nothing would be ingested from MQTT (set Gateway:Mqtt:Enabled=false for a serial-only gateway)");
        if (!mqtt.Value.Enabled && serial.Value.Ports.Count == 0)
            errors.Add("Gateway:Serial:Ports: MQTT is off and no serial port is configured; nothing would be ingested");
        for (int i = 0; i < o.Routes.Count; i++)
        {
            var r = o.Routes[i];
            var key = $"Gateway:Routes:{i}";
            if (Topics.ValidateFilter(r.Filter) is { } fe) errors.Add($"{key}:Filter: {fe}");
            else if (r.Source == "mqtt" && Topics.IsShared(r.Filter) && !string.IsNullOrEmpty(mqtt.Value.SharedGroup))
                errors.Add($"{key}:Filter: '{r.Filter}' is already a shared subscription; with Gateway:Mqtt:SharedGroup set, give the plain " +
                           $"filter ('{Topics.Unshared(r.Filter)}') and the gateway subscribes to $share/{mqtt.Value.SharedGroup}/<filter> itself");
            if (string.IsNullOrWhiteSpace(r.Format))
                errors.Add($"{key}:Format: missing; one of {string.Join(", ", decoders.Formats)}");
            else if (!decoders.Contains(r.Format))
                errors.Add($"{key}:Format: unknown payload format '{r.Format}'; known: {string.Join(", ", decoders.Formats)}");
            if (r.Qos is < 0 or > 2) errors.Add($"{key}:Qos: {r.Qos} is not 0, 1 or 2");
            if (r.TimestampFormat is not ("auto" or "unix_s" or "unix_ms" or "unix_us" or "unix_ns" or "iso8601"))
                errors.Add($"{key}:TimestampFormat: '{r.TimestampFormat}' is not auto, unix_s, unix_ms, unix_us, unix_ns or iso8601");
            if (r.DeviceIdFrom is not ("auto" or "devEui" or "name"))
                errors.Add($"{key}:DeviceIdFrom: '{r.DeviceIdFrom}' is not auto, devEui or name");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class RegistryOptionsValidator : IValidateOptions<RegistryOptions>
{
    public ValidateOptionsResult Validate(string? name, RegistryOptions o)
    {
        // The file itself is loaded and checked once, by the RegistryHolder (GatewayApp.ValidateConfiguration
        // resolves it with the other settings; a host started without that fails on its RegistryException).
        return string.IsNullOrWhiteSpace(o.Path)
            ? ValidateOptionsResult.Fail("Gateway:Registry:Path: not set; it must name the device registry JSON file")
            : ValidateOptionsResult.Success;
    }
}

internal sealed class InfluxOptionsValidator : IValidateOptions<InfluxOptions>
{
    public ValidateOptionsResult Validate(string? name, InfluxOptions o)
    {
        var errors = new List<string>();
        if (!Uri.TryCreate(o.Url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            errors.Add($"Gateway:Influx:Url: '{o.Url}' is not an http(s) URL");
        if (o.Version is not ("v1" or "v2" or "v3")) errors.Add($"Gateway:Influx:Version: '{o.Version}' is not v1, v2 or v3");
        if (o.Version == "v2" && string.IsNullOrWhiteSpace(o.Org)) errors.Add("Gateway:Influx:Org: required for v2");
        if (o.Version is "v2" or "v3" && string.IsNullOrWhiteSpace(o.Token)) errors.Add($"Gateway:Influx:Token: required for {o.Version}");
        if (string.IsNullOrWhiteSpace(o.Database) && string.IsNullOrWhiteSpace(o.Bucket)) errors.Add("Gateway:Influx:Database: missing");
        if (o.BatchSize < 1) errors.Add("Gateway:Influx:BatchSize: must be at least 1");
        if (o.FlushIntervalMs < 10) errors.Add("Gateway:Influx:FlushIntervalMs: must be at least 10");
        if (o.RetryMinMs < 1 || o.RetryMaxMs < o.RetryMinMs) errors.Add("Gateway:Influx:RetryMinMs/RetryMaxMs: need 1 <= min <= max");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class PipelineOptionsValidator : IValidateOptions<PipelineOptions>
{
    public ValidateOptionsResult Validate(string? name, PipelineOptions o)
    {
        var errors = new List<string>();
        if (o.PointQueueCapacity < 1) errors.Add("Gateway:Pipeline:PointQueueCapacity: must be at least 1");
        if (o.MaxPayloadBytes < 1) errors.Add("Gateway:Pipeline:MaxPayloadBytes: must be at least 1");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class QuarantineOptionsValidator : IValidateOptions<QuarantineOptions>
{
    public const long MinFileBytes = 64 * 1024;

    public ValidateOptionsResult Validate(string? name, QuarantineOptions o)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(o.Path)) errors.Add("Gateway:Quarantine:Path: missing");
        if (o.MaxPayloadBytes < 0) errors.Add("Gateway:Quarantine:MaxPayloadBytes: must not be negative");
        if (o.MaxFileBytes < MinFileBytes)
            errors.Add($"Gateway:Quarantine:MaxFileBytes: {o.MaxFileBytes} is too small; must be at least {MinFileBytes} (64 KiB); the default is 16 MiB");
        if (o.MaxFiles < 1)
            errors.Add($"Gateway:Quarantine:MaxFiles: {o.MaxFiles}; must be at least 1 (the current file; 8 by default keeps 7 rotated files beside it)");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class JournalOptionsValidator : IValidateOptions<JournalOptions>
{
    public ValidateOptionsResult Validate(string? name, JournalOptions o)
    {
        var errors = new List<string>();
        if (o.Enabled)
        {
            if (string.IsNullOrWhiteSpace(o.Path)) errors.Add("Gateway:Journal:Path: missing");
            else
            {
                try
                {
                    Directory.CreateDirectory(o.Path);
                    var probe = System.IO.Path.Combine(o.Path, ".write-probe");
                    File.WriteAllText(probe, "");
                    File.Delete(probe);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    errors.Add($"Gateway:Journal:Path: '{o.Path}' is not a writable folder: {e.Message}");
                }
            }
            if (o.SegmentBytes < 4096) errors.Add("Gateway:Journal:SegmentBytes: must be at least 4096");
            if (o.MaxBytes < 2 * o.SegmentBytes)
                errors.Add($"Gateway:Journal:MaxBytes: must be at least twice Gateway:Journal:SegmentBytes ({o.SegmentBytes})");
            if (o.Fsync == FsyncPolicy.Interval && o.FsyncIntervalMs < 1) errors.Add("Gateway:Journal:FsyncIntervalMs: must be at least 1");
        }
        else if (o.MemoryQueueCapacity < 1) errors.Add("Gateway:Journal:MemoryQueueCapacity: must be at least 1");
        if (o.MaxAge <= TimeSpan.Zero) errors.Add("Gateway:Journal:MaxAge: must be positive");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class SerialOptionsValidator : IValidateOptions<SerialOptions>
{
    private static readonly string[] Formats = ["kv", "csv", "jsonl"];

    public ValidateOptionsResult Validate(string? name, SerialOptions o)
    {
        var errors = new List<string>();
        var names = new HashSet<string>();
        for (int i = 0; i < o.Ports.Count; i++)
        {
            var p = o.Ports[i];
            var key = $"Gateway:Serial:Ports:{i}";
            if (string.IsNullOrWhiteSpace(p.Path)) { errors.Add($"{key}:Path: missing (for example /dev/ttyUSB0)"); continue; }
            if (!names.Add(p.EffectiveName)) errors.Add($"{key}:Name: '{p.EffectiveName}' is used by another port");
            if (!Formats.Contains(p.Format)) errors.Add($"{key}:Format: '{p.Format}' is not one of {string.Join(", ", Formats)}");
            if (p.Format == "csv" && p.Columns.Count == 0) errors.Add($"{key}:Columns: a csv port needs its column names");
            if (p.Format == "csv" && p.Columns.Count > 0 && !p.Columns.Contains(p.DeviceField))
                errors.Add($"{key}:Columns: no column named '{p.DeviceField}' (the DeviceField)");
            if (!SerialPortSettings.StandardBaudRates.Contains(p.BaudRate))
                errors.Add($"{key}:BaudRate: {p.BaudRate} is not one of {string.Join(", ", SerialPortSettings.StandardBaudRates)}");
            if (p.DataBits is < 5 or > 8) errors.Add($"{key}:DataBits: {p.DataBits} is not 5, 6, 7 or 8");
            if (p.StopBits is not (1 or 2)) errors.Add($"{key}:StopBits: {p.StopBits} is not 1 or 2");
            if (p.MaxLineBytes < 16) errors.Add($"{key}:MaxLineBytes: must be at least 16");
            if (p.ReadCoalesceMs is < 0 or > 1000) errors.Add($"{key}:ReadCoalesceMs: must be between 0 and 1000");
            if (p.ReopenMinMs < 10 || p.ReopenMaxMs < p.ReopenMinMs) errors.Add($"{key}:ReopenMinMs/ReopenMaxMs: need 10 <= min <= max");
            if (p.TimestampFormat is not ("auto" or "unix_s" or "unix_ms" or "unix_us" or "unix_ns" or "iso8601"))
                errors.Add($"{key}:TimestampFormat: '{p.TimestampFormat}' is not auto, unix_s, unix_ms, unix_us, unix_ns or iso8601");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class ExchangeOptionsValidator : IValidateOptions<CityGateway.Exchange.ExchangeOptions>
{
    public ValidateOptionsResult Validate(string? name, CityGateway.Exchange.ExchangeOptions o)
    {
        var errors = new List<string>();
        // An instance that is not the publisher only ingests: nothing of the exchange runs there.
        if (!o.Publisher) return ValidateOptionsResult.Success;
        if (o.Enabled)
        {
            if (string.IsNullOrWhiteSpace(o.CityId)) errors.Add("Gateway:Exchange:CityId: required to share data");
            try
            {
                using var signer = CityGateway.Exchange.Signing.ReleaseSigner.Load(o.Signing);
            }
            catch (CityGateway.Exchange.Signing.SigningKeyException e)
            {
                errors.Add($"{CityGateway.Exchange.Signing.ExchangeSigningOptions.Section}: {e.Message} Create a key with 'Gateway exchange keygen --out city-key.pem'.");
            }
            try { CityGateway.Exchange.AgreementLoader.LoadFolder(o.AgreementsPath); }
            catch (CityGateway.Exchange.AgreementException e) { errors.Add($"Gateway:Exchange:AgreementsPath: {e.Message}"); }
            if (o.RequestsPerMinute < 1) errors.Add("Gateway:Exchange:RequestsPerMinute: must be at least 1");
            if (o.ReleaseCheckSeconds < 1) errors.Add("Gateway:Exchange:ReleaseCheckSeconds: must be at least 1");
        }
        for (int i = 0; i < o.Partners.Count; i++)
        {
            var p = o.Partners[i];
            var key = $"Gateway:Exchange:Partners:{i}";
            if (string.IsNullOrWhiteSpace(p.Id)) errors.Add($"{key}:Id: missing");
            if (!Uri.TryCreate(p.WellKnownUrl, UriKind.Absolute, out var u) || u.Scheme is not ("http" or "https"))
                errors.Add($"{key}:WellKnownUrl: '{p.WellKnownUrl}' is not an http(s) URL");
            if (string.IsNullOrWhiteSpace(p.ApiKey)) errors.Add($"{key}:ApiKey: missing (set it through Gateway__Exchange__Partners__{i}__ApiKey)");
            if (string.IsNullOrWhiteSpace(o.CityId)) errors.Add("Gateway:Exchange:CityId: required to pull partner feeds");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors.Distinct());
    }
}
