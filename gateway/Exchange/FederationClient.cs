using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using CityGateway.Core;
using CityGateway.Exchange.Signing;
using CityGateway.Storage.Influx;
using Microsoft.Extensions.Options;

namespace CityGateway.Exchange;

/// <summary>
/// Pulls the feeds partner cities publish for us: discovers their public key (configured, or pinned
/// on first use and refused if it later changes), follows the cursor, verifies every release's
/// signature and that it was made for us, and writes accepted values to measurement "partner"
/// (tag city = the partner city) at the window start. Anything that fails verification is refused
/// and logged, and the cursor does not move past it.
/// </summary>
public sealed partial class FederationClient(
    IOptions<ExchangeOptions> options,
    WriterQueues channels,
    ILogger<FederationClient> logger) : BackgroundService
{
    private readonly ExchangeOptions _options = options.Value;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };

    public long Accepted;
    public long Rejected;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_options.Partners.Count == 0) return;
        var loops = _options.Partners.Select(p => PollLoopAsync(p, stoppingToken)).ToArray();
        await Task.WhenAll(loops);
    }

    private async Task PollLoopAsync(PartnerFeedOptions partner, CancellationToken ct)
    {
        var interval = TimeSpan.FromSeconds(Math.Max(1, partner.PollSeconds));
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await PullOnceAsync(partner, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { break; }
            catch (Exception e) when (e is HttpRequestException or JsonException or InvalidOperationException or TaskCanceledException)
            {
                LogPullFailed(partner.Id, e.Message);
            }
            try { await Task.Delay(interval, ct); } catch (OperationCanceledException) { break; }
        }
    }

    /// <summary>Pulls until the partner has nothing more; returns the number of releases accepted.</summary>
    public async Task<int> PullOnceAsync(PartnerFeedOptions partner, CancellationToken ct)
    {
        var folder = Directory.CreateDirectory(Path.Combine(_options.DataPath, "federation", partner.Id)).FullName;
        var wellKnown = JsonNode.Parse(await _http.GetStringAsync(partner.WellKnownUrl, ct)) as JsonObject
                        ?? throw new InvalidOperationException("the well-known document is not a JSON object");
        var cityId = wellKnown["cityId"]?.GetValue<string>();
        if (cityId != partner.Id) throw new InvalidOperationException($"the well-known document names city '{cityId}', expected '{partner.Id}'");
        var publishedKey = wellKnown["publicKey"]?.GetValue<string>() ?? throw new InvalidOperationException("no publicKey in the well-known document");
        var trusted = TrustedKey(partner, folder, publishedKey);
        var apiBase = wellKnown["apiBase"]?.GetValue<string>() ?? throw new InvalidOperationException("no apiBase in the well-known document");
        var cursorFile = Path.Combine(folder, "cursor");
        string? cursor = File.Exists(cursorFile) ? File.ReadAllText(cursorFile).Trim() : null;
        int accepted = 0;
        while (true)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"{apiBase}/feed?limit=100" + (cursor is null ? "" : "&since=" + Uri.EscapeDataString(cursor)));
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", partner.ApiKey);
            using var response = await _http.SendAsync(request, ct);
            var text = await response.Content.ReadAsStringAsync(ct);
            if (!response.IsSuccessStatusCode) throw new HttpRequestException($"feed answered HTTP {(int)response.StatusCode}: {text}");
            var feed = JsonNode.Parse(text)!.AsObject();
            var points = new List<Point>();
            foreach (var node in feed["releases"]!.AsArray())
            {
                var envelope = node!.AsObject();
                if (!SignedDocument.VerifyEnvelope(envelope, trusted, out var error))
                    return Refuse(partner, envelope, $"signature: {error}", accepted);
                var payload = envelope["payload"]!.AsObject();
                if (payload["city"]?.GetValue<string>() != partner.Id || payload["partner"]?.GetValue<string>() != _options.CityId)
                    return Refuse(partner, envelope, "the release is not from this partner to this city", accepted);
                var start = DateTimeOffset.Parse(payload["window"]!["start"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
                foreach (var row in payload["rows"]!.AsArray())
                {
                    var p = new Point("partner",
                    [
                        new("city", partner.Id), new("district", row!["district"]!.GetValue<string>()), new("domain", row["domain"]!.GetValue<string>()),
                        new("metric", row["metric"]!.GetValue<string>()), new("aggregate", row["aggregate"]!.GetValue<string>()),
                    ], UnixTime.ToNs(start)) { Origin = "federation:" + partner.Id };
                    p.Fields.Add(PointField.Of("value", row["value"]!.GetValue<double>()));
                    p.Fields.Add(PointField.Of("sequence", payload["sequence"]!.GetValue<long>()));
                    points.Add(p);
                }
                accepted++;
                Interlocked.Increment(ref Accepted);
            }
            foreach (var p in points) await channels.Points.Writer.WriteAsync(p, ct);
            var next = feed["next"]?.GetValue<string>();
            if (next is not null && next != cursor)
            {
                File.WriteAllText(cursorFile + ".tmp", next);
                File.Move(cursorFile + ".tmp", cursorFile, overwrite: true);
                cursor = next;
            }
            if (feed["more"]?.GetValue<bool>() != true) break;
        }
        if (accepted > 0) LogPulled(partner.Id, accepted, cursor ?? "");
        return accepted;
    }

    private int Refuse(PartnerFeedOptions partner, JsonObject envelope, string why, int accepted)
    {
        Interlocked.Increment(ref Rejected);
        LogRefused(partner.Id, envelope["payload"]?["sequence"]?.ToString() ?? "?", why);
        return accepted;
    }

    /// <summary>The configured key, or the one pinned at first contact; a changed published key is refused.</summary>
    private string TrustedKey(PartnerFeedOptions partner, string folder, string published)
    {
        if (!string.IsNullOrWhiteSpace(partner.PublicKeyPem)) return partner.PublicKeyPem;
        var pin = Path.Combine(folder, "public-key.pem");
        if (!File.Exists(pin))
        {
            File.WriteAllText(pin, published);
            LogPinned(partner.Id);
            return published;
        }
        var pinned = File.ReadAllText(pin);
        if (pinned.Trim() != published.Trim())
            LogKeyChanged(partner.Id, pin);
        return pinned;
    }

    public override void Dispose()
    {
        _http.Dispose();
        base.Dispose();
    }

    [LoggerMessage(EventId = 8101, Level = LogLevel.Information, Message = "Pulled {Count} releases from {Partner}; cursor {Cursor}")]
    private partial void LogPulled(string partner, int count, string cursor);

    [LoggerMessage(EventId = 8102, Level = LogLevel.Error, Message = "Refused release #{Sequence} from {Partner}: {Why}. Nothing after it is taken until this is resolved")]
    private partial void LogRefused(string partner, string sequence, string why);

    [LoggerMessage(EventId = 8103, Level = LogLevel.Warning, Message = "Pulling from {Partner} failed: {Error}")]
    private partial void LogPullFailed(string partner, string error);

    [LoggerMessage(EventId = 8104, Level = LogLevel.Information, Message = "Pinned the public key of {Partner} at first use")]
    private partial void LogPinned(string partner);

    [LoggerMessage(EventId = 8105, Level = LogLevel.Error, Message = "The public key {Partner} publishes differs from the one pinned in {Pin}: its releases are verified against the pinned key only. Replace the pin after confirming the change with the partner")]
    private partial void LogKeyChanged(string partner, string pin);
}
