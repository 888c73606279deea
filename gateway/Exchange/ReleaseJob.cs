using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CityGateway.Core;
using CityGateway.Exchange.Audit;
using CityGateway.Exchange.Privacy;
using CityGateway.Exchange.Signing;
using CityGateway.Storage.Influx;
using Microsoft.Extensions.Options;

namespace CityGateway.Exchange;

/// <summary>
/// Makes the releases: for every agreement and every window that ended more than the allowed
/// lateness ago and has no release yet, reads InfluxDB per device (so contributing-device counts are
/// exact), aggregates per district, applies the agreement's privacy policy (k devices; for traffic
/// and water also clamping, discrete Laplace noise and the minimum volume on the noisy value, with ε
/// reserved in the partner's monthly budget first), signs the release, stores it immutably, writes
/// the released values to measurement "shared" and records the release in the audit log.
/// </summary>
public sealed partial class ReleaseJob(
    ExchangeContext exchange,
    InfluxClient influx,
    WriterQueues channels,
    IOptions<ExchangeOptions> options,
    ILogger<ReleaseJob> logger) : BackgroundService
{
    private readonly ExchangeOptions _options = options.Value;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.Enabled || !_options.Publisher) return;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Max(1, _options.ReleaseCheckSeconds)));
        // The first run waits one period: at start-up the journal may still be replaying data.
        while (await WaitTick(timer, stoppingToken))
        {
            try
            {
                await RunOnceAsync(DateTimeOffset.UtcNow, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { break; }
            catch (Exception e) when (e is HttpRequestException or InfluxQueryException or ReleaseConflictException or TaskCanceledException)
            {
                LogRunFailed(e.Message);
            }
        }
    }

    private static async Task<bool> WaitTick(PeriodicTimer timer, CancellationToken ct)
    {
        try { return await timer.WaitForNextTickAsync(ct); }
        catch (OperationCanceledException) { return false; }
    }

    /// <summary>Releases every window that is due at <paramref name="now"/>; returns how many were made.</summary>
    public async Task<int> RunOnceAsync(DateTimeOffset now, CancellationToken ct)
    {
        int made = 0;
        foreach (var agreement in exchange.Agreements)
        {
            var window = agreement.Window;
            long w = window.Ticks;
            var from = Max(agreement.ValidFrom, now - _options.Backfill);
            var start = new DateTimeOffset((from.UtcTicks + w - 1) / w * w, TimeSpan.Zero);
            for (; start + window + agreement.AllowedLateness <= now && start + window <= agreement.ValidUntil; start += window)
            {
                if (exchange.Releases.HasWindow(agreement.Partner.Id, start)) continue;
                if (await ReleaseAsync(agreement, start, ct)) made++;
            }
        }
        return made;
    }

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    private async Task<bool> ReleaseAsync(Agreement agreement, DateTimeOffset windowStart, CancellationToken ct)
    {
        var partner = agreement.Partner.Id;
        var windowEnd = windowStart + agreement.Window;
        long sequence = exchange.Releases.NextSequence(partner);
        var releaseId = $"{partner}/{windowStart.ToUnixTimeSeconds()}";
        // Read first: ε is spent only for metrics that have a cell with k devices (noise will be drawn).
        var data = new List<(SharedMetric Metric, Dictionary<string, List<double>> PerDistrict)>();
        foreach (var metric in agreement.Metrics)
            data.Add((metric, await PerDeviceAsync(agreement, metric, windowStart, windowEnd, ct)));
        // Districts partition the devices, so one ε per metric covers all districts (parallel
        // composition); metrics of the same devices add up (sequential composition).
        double epsilon = data.Where(d => d.Metric.Personal && d.PerDistrict.Values.Any(v => v.Count >= d.Metric.MinDevices)).Sum(d => d.Metric.Epsilon);
        if (epsilon > 0 && !exchange.Ledger.TryReserve(partner, windowStart, epsilon, agreement.EpsilonPerMonth, releaseId, out var remaining))
        {
            exchange.Releases.MarkRefused(partner, windowStart, $"privacy budget exhausted: needs ε {epsilon}, {remaining} left this month");
            LogBudgetExhausted(partner, windowStart, epsilon, remaining);
            exchange.Audit.Append("release_refused", new JsonObject
            {
                ["partner"] = partner, ["windowStart"] = windowStart.ToString("O"), ["epsilon"] = epsilon, ["reason"] = "budget exhausted",
            });
            return false;
        }

        var rows = new JsonArray();
        var shared = new List<Point>();
        int suppressed = 0;
        foreach (var (metric, perDistrict) in data)
        {
            foreach (var (district, values) in perDistrict.OrderBy(d => d.Key, StringComparer.Ordinal))
            {
                var result = metric.Personal
                    ? NoiseCalibration.Release(values, new ReleaseSpec
                    {
                        Aggregate = metric.Aggregate, Lower = metric.Clamp![0], Upper = metric.Clamp[1], Granularity = metric.Granularity,
                        Epsilon = metric.Epsilon, MinDevices = metric.MinDevices, MinVolume = metric.MinVolume,
                    })
                    : NoiseCalibration.ExactRelease(values, metric.Aggregate, metric.MinDevices);
                if (!result.Released || result.Value is not { } value)
                {
                    suppressed++;
                    continue;
                }
                // Environment values are rounded: precision finer than this tells nothing more of the city.
                if (!metric.Personal) value = Math.Round(value, 2);
                rows.Add(new JsonObject
                {
                    ["district"] = district, ["domain"] = metric.Domain, ["metric"] = metric.Metric,
                    ["aggregate"] = metric.Aggregate, ["value"] = value,
                });
                var p = new Point("shared",
                    [new("partner", partner), new("district", district), new("domain", metric.Domain), new("metric", metric.Metric), new("aggregate", metric.Aggregate)],
                    UnixTime.ToNs(windowStart)) { Origin = "exchange" };
                p.Fields.Add(PointField.Of("value", value));
                p.Fields.Add(PointField.Of("sequence", sequence));
                shared.Add(p);
            }
        }

        var payload = new JsonObject
        {
            ["city"] = exchange.CityId,
            ["partner"] = partner,
            ["agreementVersion"] = agreement.Version,
            ["sequence"] = sequence,
            ["window"] = new JsonObject { ["start"] = windowStart.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture), ["end"] = windowEnd.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture) },
            ["epsilon"] = epsilon,
            ["rows"] = rows,
        };
        var envelope = SignedDocument.Create(payload, exchange.Signer);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(envelope);
        exchange.Releases.Add(partner, sequence, windowStart, bytes);
        // Wait for room rather than drop: "shared" must show everything that left the city.
        foreach (var p in shared) await channels.Points.Writer.WriteAsync(p, ct);
        exchange.Audit.Append("release", new JsonObject
        {
            ["partner"] = partner, ["sequence"] = sequence, ["windowStart"] = windowStart.ToString("O"), ["rows"] = rows.Count,
            ["suppressed"] = suppressed, ["epsilon"] = epsilon, ["agreementVersion"] = agreement.Version,
            ["sha256"] = Convert.ToHexStringLower(SHA256.HashData(bytes)),
        });
        exchange.Checkpoints.Issue();
        LogReleased(partner, sequence, windowStart, rows.Count, suppressed, epsilon);
        return true;
    }

    /// <summary>Per district, one value per contributing device over the window (InfluxQL, grouped by district and device).</summary>
    private async Task<Dictionary<string, List<double>>> PerDeviceAsync(Agreement agreement, SharedMetric metric,
        DateTimeOffset start, DateTimeOffset end, CancellationToken ct)
    {
        string fn = metric.Aggregate switch { "sum" => "sum", "count" => "count", "min" => "min", "max" => "max", _ => "mean" };
        var where = $"time >= {UnixTime.ToNs(start)} AND time < {UnixTime.ToNs(end)}";
        if (!agreement.Districts.Contains("*"))
            where += $" AND \"district\" =~ /^({string.Join("|", agreement.Districts.Select(d => Regex.Escape(d).Replace("/", "\\/")))})$/";
        var q = $"SELECT {fn}(\"{metric.Metric}\") AS v FROM \"{metric.Domain}\" WHERE {where} GROUP BY \"district\", \"device\"";
        using var doc = await influx.QueryAsync(q, ct: ct);
        var result = new Dictionary<string, List<double>>(StringComparer.Ordinal);
        var first = doc.RootElement.GetProperty("results")[0];
        if (!first.TryGetProperty("series", out var series)) return result;
        foreach (var s in series.EnumerateArray())
        {
            var district = s.GetProperty("tags").GetProperty("district").GetString() ?? "";
            if (district.Length == 0 || !agreement.CoversDistrict(district)) continue;
            foreach (var row in s.GetProperty("values").EnumerateArray())
            {
                if (row[1].ValueKind != JsonValueKind.Number) continue;
                if (!result.TryGetValue(district, out var list)) result[district] = list = [];
                list.Add(row[1].GetDouble());
            }
        }
        return result;
    }

    [LoggerMessage(EventId = 8001, Level = LogLevel.Information, Message = "Released window {Window:O} to {Partner} as #{Sequence}: {Rows} cells, {Suppressed} suppressed, ε {Epsilon}")]
    private partial void LogReleased(string partner, long sequence, DateTimeOffset window, int rows, int suppressed, double epsilon);

    [LoggerMessage(EventId = 8002, Level = LogLevel.Warning, Message = "No release for {Partner}, window {Window:O}: it needs ε {Epsilon} and the month's budget has {Remaining} left")]
    private partial void LogBudgetExhausted(string partner, DateTimeOffset window, double epsilon, double remaining);

    [LoggerMessage(EventId = 8003, Level = LogLevel.Warning, Message = "Release run failed: {Error}; retrying at the next check")]
    private partial void LogRunFailed(string error);
}
