using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CityGateway.Core;
using CityGateway.Exchange.Audit;
using CityGateway.Exchange.Privacy;
using CityGateway.Exchange.Signing;
using CityGateway.Normalisation;
using CityGateway.Storage.Influx;
using Microsoft.Extensions.Options;

namespace CityGateway.Exchange;

/// <summary>
/// Makes the releases: for every agreement and every window that ended more than the allowed
/// lateness ago and is not recorded yet, takes each shared metric's cell group from the city-wide
/// <see cref="CellStore"/> (computing it once if no partner had it yet), signs the release, records
/// it durably, stores it, writes the released values to measurement "shared" and records the
/// release in the audit log.
///
/// <para><b>Privacy unit.</b> One device's contributions in one window. Per metric a device counts
/// in one district only (<see cref="DeviceAssignment"/>) and its contribution is clamped, so the
/// districts of a cell group cover disjoint devices and the group costs the ε of one cell
/// (parallel composition). The ε of a (window, dataset) is the sum of the ε of its metrics' groups
/// (sequential composition), charged whatever the data: a group is charged when it is computed,
/// whether or not any device reported, and a partner is charged the ε of the personal groups its
/// release carries. So the ε in a release depends on the agreements and the budgets, never on the
/// data.</para>
///
/// <para><b>Personal classes</b> (traffic, water): every district of the data-independent set (the
/// agreements' listed districts and, for "*", the districts of the device registry) is computed
/// with <see cref="NoiseCalibration.ReleaseCell(IReadOnlyList{double}, ReleaseSpec)"/>: the
/// decision to release is a noisy count compared with k, suppression is post-processing, and no
/// exact device count is used or released. <b>Non-personal</b> (environment): exact mean or sum
/// with k devices, rounded to 0.01; the agreement rules (<see cref="AgreementLoader"/>) keep any
/// set of aggregates from determining a device.</para>
///
/// <para><b>Budgets.</b> A group's ε is charged once to the city ledger (per dataset per month,
/// Gateway:Exchange:CityEpsilonPerMonth) before its noise is drawn; a window's ε is charged to the
/// partner's ledger (epsilonPerMonth of the agreement). If the partner cannot afford the window,
/// nothing is released to it that window; if the city cannot afford a group, its cells go to no
/// one. Either way no noise is drawn, the refusal is counted, logged and audited
/// ("release_refused").</para>
///
/// <para><b>Lost releases.</b> "Already released" is read from <see cref="ReleaseRecords"/> and the
/// ledgers. A recorded release whose file has gone is written again from its record (same
/// sequence, same payload). A window charged to the partner with no record, or a group charged to
/// the city with no stored values, is refused and alerted ("release_lost"); nothing is ever noised
/// again.</para>
/// </summary>
public sealed partial class ReleaseJob(
    ExchangeContext exchange,
    InfluxClient influx,
    WriterQueues channels,
    IOptions<ExchangeOptions> options,
    IServiceProvider services,
    ReleaseJobState state,
    ILogger<ReleaseJob> logger) : BackgroundService
{
    private readonly ExchangeOptions _options = options.Value;
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>Cells not released because the city-wide budget of their dataset was spent (since start).</summary>
    public int CityRefusedGroups { get; private set; }

    /// <summary>Windows and cell groups found lost (charged, nothing recorded) since start.</summary>
    public int Lost { get; private set; }

    /// <summary>Release files written again from their records since start.</summary>
    public int Restored { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.Enabled || !_options.Publisher) return;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Max(1, _options.ReleaseCheckSeconds)));
        // The first run waits one period: at start-up the journal may still be replaying data.
        while (await WaitTick(timer, stoppingToken))
        {
            // The loop boundary: nothing the job meets may stop the host (and with it the ingestion).
            try
            {
                await RunOnceAsync(DateTimeOffset.UtcNow, stoppingToken);
                state.Succeeded();
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { break; }
            catch (Exception e) when (e is HttpRequestException or InfluxQueryException or ReleaseConflictException or TaskCanceledException or IOException)
            {
                state.Failed(e.Message);
                LogRunFailed(e.Message);
            }
            catch (Exception e)
            {
                state.Failed(e.GetType().Name + ": " + e.Message);
                LogRunFault(e);
            }
        }
    }

    private static async Task<bool> WaitTick(PeriodicTimer timer, CancellationToken ct)
    {
        try { return await timer.WaitForNextTickAsync(ct); }
        catch (OperationCanceledException) { return false; }
    }

    /// <summary>Releases every window that is due at <paramref name="now"/>; returns how many new releases were made (restored files not counted).</summary>
    public async Task<int> RunOnceAsync(DateTimeOffset now, CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
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
                    var partner = agreement.Partner.Id;
                    if (exchange.Records.TryGet(partner, start, out var record))
                    {
                        if (!exchange.Releases.HasFile(partner, start)) RestoreFile(record!);
                        continue;
                    }
                    if (exchange.Releases.HasWindow(partner, start) || exchange.Releases.IsLost(partner, start)) continue;
                    if (exchange.Ledger.Contains(PartnerReleaseId(partner, start)))
                    {
                        // Charged, so released once, but neither file nor record is left.
                        exchange.Releases.MarkLost(partner, start, "charged to the partner's ledger but no release record is left");
                        Lost++;
                        LogReleaseLost(partner, start, "no release record is left for a window charged to the partner");
                        exchange.Audit.Append("release_lost", new JsonObject
                        {
                            ["partner"] = partner, ["windowStart"] = start.ToString("O"), ["reason"] = "release record missing",
                        });
                        continue;
                    }
                    if (await ReleaseAsync(agreement, start, ct)) made++;
                }
            }
            return made;
        }
        finally
        {
            _gate.Release();
        }
    }

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    private static string PartnerReleaseId(string partner, DateTimeOffset windowStart) => $"{partner}/{windowStart.ToUnixTimeSeconds()}";

    /// <summary>Writes a recorded release's file again: same sequence, same payload, signed again.</summary>
    private void RestoreFile(ReleaseRecord record)
    {
        var envelope = SignedDocument.Create((JsonObject)record.Payload.DeepClone(), exchange.Signer);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(envelope);
        exchange.Releases.Restore(record.Partner, record.Sequence, record.WindowStart, bytes);
        Restored++;
        LogReleaseRestored(record.Partner, record.Sequence, record.WindowStart);
        exchange.Audit.Append("release_restored", new JsonObject
        {
            ["partner"] = record.Partner, ["sequence"] = record.Sequence, ["windowStart"] = record.WindowStart.ToString("O"),
            ["sha256"] = Convert.ToHexStringLower(SHA256.HashData(bytes)),
        });
    }

    private async Task<bool> ReleaseAsync(Agreement agreement, DateTimeOffset windowStart, CancellationToken ct)
    {
        var partner = agreement.Partner.Id;
        var windowEnd = windowStart + agreement.Window;
        var releaseId = PartnerReleaseId(partner, windowStart);
        // The partner's ε for the window is fixed by its agreement: checked before any group is computed.
        double needed = agreement.Metrics.Where(m => m.Personal).Sum(m => m.Epsilon);
        var period = PrivacyBudgetLedger.PeriodOf(windowStart);
        if (needed > 0 && PrivacyBudgetLedger.ChargeMicro(needed) > PrivacyBudgetLedger.BudgetMicro(agreement.EpsilonPerMonth)
                - (long)Math.Round(exchange.Ledger.Spent(partner, period) * PrivacyBudgetLedger.MicroPerEpsilon))
        {
            RefuseForPartnerBudget(partner, windowStart, needed, exchange.Ledger.Remaining(partner, period, agreement.EpsilonPerMonth));
            return false;
        }

        var rows = new JsonArray();
        var shared = new List<Point>();
        int suppressed = 0, withheld = 0;
        double epsilon = 0;
        foreach (var metric in agreement.Metrics)
        {
            var group = await GroupAsync(agreement, metric, windowStart, ct);
            if (group is null || group.Refused)
            {
                withheld++;
                continue;
            }
            if (metric.Personal) epsilon += metric.Epsilon;
            var districts = agreement.Districts.Contains("*") ? group.Values.Keys : agreement.Districts;
            foreach (var district in districts.Order(StringComparer.Ordinal))
            {
                if (!group.Values.TryGetValue(district, out var cell) || cell is not { } value)
                {
                    suppressed++;
                    continue;
                }
                rows.Add(new JsonObject
                {
                    ["district"] = district, ["domain"] = metric.Domain, ["metric"] = metric.Metric,
                    ["aggregate"] = metric.Aggregate, ["value"] = value,
                });
                var p = new Point("shared",
                    [new("partner", partner), new("district", district), new("domain", metric.Domain), new("metric", metric.Metric), new("aggregate", metric.Aggregate)],
                    UnixTime.ToNs(windowStart)) { Origin = "exchange" };
                p.Fields.Add(PointField.Of("value", value));
                shared.Add(p);
            }
        }
        if (epsilon > 0 && !exchange.Ledger.TryReserve(partner, windowStart, epsilon, agreement.EpsilonPerMonth, releaseId, out var remaining))
        {
            RefuseForPartnerBudget(partner, windowStart, epsilon, remaining);
            return false;
        }

        long sequence = Math.Max(exchange.Releases.NextSequence(partner), exchange.Records.LastSequence(partner) + 1);
        foreach (var p in shared) p.Fields.Add(PointField.Of("sequence", sequence));
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
        // The record is durable before the file exists: a lost file is restored from it, never recomputed.
        exchange.Records.Append(new ReleaseRecord(partner, sequence, windowStart, (JsonObject)payload.DeepClone()));
        var envelope = SignedDocument.Create(payload, exchange.Signer);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(envelope);
        exchange.Releases.Add(partner, sequence, windowStart, bytes);
        // Wait for room rather than drop: "shared" must show everything that left the city.
        foreach (var p in shared) await channels.Points.Writer.WriteAsync(p, ct);
        // The release's audit entry: everything about this release that is audited is appended here.
        exchange.Audit.Append("release", new JsonObject
        {
            ["partner"] = partner, ["sequence"] = sequence, ["windowStart"] = windowStart.ToString("O"), ["rows"] = rows.Count,
            ["suppressed"] = suppressed, ["withheld"] = withheld, ["epsilon"] = epsilon, ["agreementVersion"] = agreement.Version,
            ["sha256"] = Convert.ToHexStringLower(SHA256.HashData(bytes)),
        });
        exchange.Checkpoints.Issue();
        LogReleased(partner, sequence, windowStart, rows.Count, suppressed, epsilon);
        return true;
    }

    private void RefuseForPartnerBudget(string partner, DateTimeOffset windowStart, double epsilon, double remaining)
    {
        exchange.Releases.MarkRefused(partner, windowStart, $"privacy budget exhausted: needs ε {epsilon}, {remaining} left this month");
        LogBudgetExhausted(partner, windowStart, epsilon, remaining);
        exchange.Audit.Append("release_refused", new JsonObject
        {
            ["partner"] = partner, ["windowStart"] = windowStart.ToString("O"), ["epsilon"] = epsilon, ["reason"] = "budget exhausted",
        });
    }

    /// <summary>
    /// The cell group of <paramref name="metric"/> for the window: from the cell store if any partner
    /// had it, else computed once now (charging the city ledger first for personal metrics). Null
    /// when it is lost (charged to the city but not stored).
    /// </summary>
    private async Task<CellGroup?> GroupAsync(Agreement agreement, SharedMetric metric, DateTimeOffset windowStart, CancellationToken ct)
    {
        var key = new CellGroupKey(windowStart, agreement.Window, metric.Domain, metric.Metric, metric.Aggregate);
        switch (exchange.Cells.TryGet(key, out var stored))
        {
            case CellStore.Lookup.Found: return stored;
            case CellStore.Lookup.Unreadable:
                GroupLost(key, "its stored values are unreadable");
                return null;
        }
        if (metric.Personal)
        {
            if (exchange.CityLedger.Contains(key.Id))
            {
                GroupLost(key, "charged to the city ledger but its values are not stored");
                // Recorded as withheld, so the loss is alerted once and the group is never computed.
                exchange.Cells.Add(new CellGroup(key, 0, true, "lost: charged to the city ledger but its values were not stored", new Dictionary<string, double?>()));
                return null;
            }
            if (!exchange.CityLedger.TryReserve(metric.Domain, windowStart, metric.Epsilon, _options.CityEpsilonPerMonth, key.Id, out var left))
            {
                var refused = new CellGroup(key, 0, true, $"city budget for {metric.Domain} exhausted: needs ε {metric.Epsilon}, {left} left this month",
                    new Dictionary<string, double?>());
                exchange.Cells.Add(refused);
                CityRefusedGroups++;
                LogCityBudgetExhausted(key.Id, metric.Epsilon, left);
                exchange.Audit.Append("release_refused", new JsonObject
                {
                    ["cells"] = key.Id, ["dataset"] = metric.Domain, ["windowStart"] = windowStart.ToString("O"),
                    ["epsilon"] = metric.Epsilon, ["reason"] = "city budget exhausted",
                });
                return refused;
            }
        }

        var perDistrict = DeviceAssignment.OneDistrictPerDevice(await PerDeviceAsync(metric, windowStart, windowStart + agreement.Window, ct));
        var values = new Dictionary<string, double?>(StringComparer.Ordinal);
        foreach (var district in CityDistricts())
        {
            IReadOnlyList<double> devices = perDistrict.TryGetValue(district, out var list) ? list : [];
            var result = metric.Personal
                ? NoiseCalibration.ReleaseCell(devices, new ReleaseSpec
                {
                    Aggregate = metric.Aggregate, Lower = metric.Clamp![0], Upper = metric.Clamp[1], Granularity = metric.Granularity,
                    Epsilon = metric.Epsilon, MinDevices = metric.MinDevices, MinVolume = metric.MinVolume,
                })
                : NoiseCalibration.ExactRelease(devices, metric.Aggregate, metric.MinDevices);
            // Environment values are rounded: precision finer than this tells nothing more of the city.
            values[district] = result.Released && result.Value is { } v ? (metric.Personal ? v : Math.Round(v, 2)) : null;
        }
        var group = new CellGroup(key, metric.Personal ? metric.Epsilon : 0, false, null, values);
        exchange.Cells.Add(group);
        return group;
    }

    private void GroupLost(CellGroupKey key, string reason)
    {
        Lost++;
        LogReleaseLost("*", key.WindowStart, $"cells {key.Id}: {reason}");
        exchange.Audit.Append("release_lost", new JsonObject
        {
            ["cells"] = key.Id, ["windowStart"] = key.WindowStart.ToString("O"), ["reason"] = reason,
        });
    }

    /// <summary>
    /// The data-independent set of districts every cell group is computed for: the districts listed
    /// in any agreement and the districts of the device registry (configuration, not data). A
    /// district of the data outside this set is not released.
    /// </summary>
    private SortedSet<string> CityDistricts()
    {
        var set = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var a in exchange.Agreements)
            foreach (var d in a.Districts)
                if (d != "*") set.Add(d);
        if (services.GetService<RegistryHolder>() is { } registry)
            foreach (var device in registry.Current.Devices)
                if (!string.IsNullOrEmpty(device.District)) set.Add(device.District);
        return set;
    }

    /// <summary>Per device and district, its aggregate over the window and its number of readings (InfluxQL, grouped by district and device).</summary>
    private async Task<List<DeviceReading>> PerDeviceAsync(SharedMetric metric, DateTimeOffset start, DateTimeOffset end, CancellationToken ct)
    {
        string fn = metric.Aggregate switch { "sum" => "sum", "count" => "count", _ => "mean" };
        var q = $"SELECT {fn}(\"{metric.Metric}\") AS v, count(\"{metric.Metric}\") AS n FROM \"{metric.Domain}\" " +
                $"WHERE time >= {UnixTime.ToNs(start)} AND time < {UnixTime.ToNs(end)} GROUP BY \"district\", \"device\"";
        using var doc = await influx.QueryAsync(q, ct: ct);
        var result = new List<DeviceReading>();
        var first = doc.RootElement.GetProperty("results")[0];
        if (!first.TryGetProperty("series", out var series)) return result;
        foreach (var s in series.EnumerateArray())
        {
            var tags = s.GetProperty("tags");
            var district = tags.GetProperty("district").GetString() ?? "";
            var device = tags.TryGetProperty("device", out var d) ? d.GetString() ?? "" : "";
            if (district.Length == 0 || device.Length == 0) continue;
            foreach (var row in s.GetProperty("values").EnumerateArray())
            {
                if (row[1].ValueKind != JsonValueKind.Number || row[2].ValueKind != JsonValueKind.Number) continue;
                result.Add(new DeviceReading(device, district, row[1].GetDouble(), row[2].GetInt64()));
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

    [LoggerMessage(EventId = 8009, Level = LogLevel.Error, Message = "Release run failed unexpectedly; the gateway keeps ingesting and retries at the next check")]
    private partial void LogRunFault(Exception e);

    [LoggerMessage(EventId = 8010, EventName = "CityBudgetExhausted", Level = LogLevel.Warning, Message = "Cells {Cells} not released to anyone: they need ε {Epsilon} and the city's budget for the dataset has {Remaining} left this month")]
    private partial void LogCityBudgetExhausted(string cells, double epsilon, double remaining);

    [LoggerMessage(EventId = 8011, EventName = "ReleaseLost", Level = LogLevel.Error, Message = "Release lost for {Partner}, window {Window:O}: {Reason}. It is not computed again (fresh noise would undo the privacy protection); restore the exchange data folder from a backup")]
    private partial void LogReleaseLost(string partner, DateTimeOffset window, string reason);

    [LoggerMessage(EventId = 8012, EventName = "ReleaseRestored", Level = LogLevel.Warning, Message = "Release file #{Sequence} of {Partner} (window {Window:O}) was missing: written again from its record, same values")]
    private partial void LogReleaseRestored(string partner, long sequence, DateTimeOffset window);
}
