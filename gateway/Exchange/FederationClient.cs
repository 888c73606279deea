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
            catch (Exception e) when (e is HttpRequestException or FeedFormatException or TaskCanceledException)
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
        var wellKnown = FeedReader.ParseObject(await _http.GetStringAsync(partner.WellKnownUrl, ct), "the well-known document");
        var cityId = FeedReader.OptionalString(wellKnown["cityId"], "the well-known document's cityId");
        if (cityId != partner.Id) throw new FeedFormatException($"the well-known document names city '{cityId}', expected '{partner.Id}'");
        var publishedKey = FeedReader.String(wellKnown["publicKey"], "the well-known document's publicKey");
        var trusted = TrustedKey(partner, folder, publishedKey);
        var apiBase = FeedReader.String(wellKnown["apiBase"], "the well-known document's apiBase");
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
            var feed = FeedReader.ParseObject(text, "the feed");
            var points = new List<Point>();
            foreach (var node in FeedReader.Array(feed["releases"], "the feed's releases"))
            {
                var envelope = FeedReader.Object(node, "a release");
                if (!SignedDocument.VerifyEnvelope(envelope, trusted, out var error))
                    return Refuse(partner, envelope, $"signature: {error}", accepted);
                var payload = FeedReader.Object(envelope["payload"], "a release's payload");
                if (FeedReader.OptionalString(payload["city"], "payload.city") != partner.Id
                    || FeedReader.OptionalString(payload["partner"], "payload.partner") != _options.CityId)
                    return Refuse(partner, envelope, "the release is not from this partner to this city", accepted);
                var start = FeedReader.Time(FeedReader.Object(payload["window"], "payload.window")["start"], "payload.window.start");
                long sequence = FeedReader.Integer(payload["sequence"], "payload.sequence");
                foreach (var rowNode in FeedReader.Array(payload["rows"], "payload.rows"))
                {
                    var row = FeedReader.Object(rowNode, "a row");
                    var p = new Point("partner",
                    [
                        new("city", partner.Id), new("district", FeedReader.String(row["district"], "row.district")),
                        new("domain", FeedReader.String(row["domain"], "row.domain")),
                        new("metric", FeedReader.String(row["metric"], "row.metric")),
                        new("aggregate", FeedReader.String(row["aggregate"], "row.aggregate")),
                    ], UnixTime.ToNs(start)) { Origin = "federation:" + partner.Id };
                    p.Fields.Add(PointField.Of("value", FeedReader.Number(row["value"], "row.value")));
                    p.Fields.Add(PointField.Of("sequence", sequence));
                    points.Add(p);
                }
                accepted++;
                Interlocked.Increment(ref Accepted);
            }
            foreach (var p in points) await channels.Points.Writer.WriteAsync(p, ct);
            var next = FeedReader.OptionalString(feed["next"], "the feed's next");
            if (next is not null && next != cursor)
            {
                File.WriteAllText(cursorFile + ".tmp", next);
                File.Move(cursorFile + ".tmp", cursorFile, overwrite: true);
                cursor = next;
            }
            if (FeedReader.OptionalBool(feed["more"], "the feed's more") != true) break;
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
