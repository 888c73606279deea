using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using CityGateway.Core;
using CityGateway.Exchange.Signing;
using CityGateway.Storage.Influx;
using Microsoft.Extensions.Options;

namespace CityGateway.Exchange;

/// <summary>A partner's answer that is refused; <see cref="Reason"/> is the counter's reason tag.</summary>
internal sealed class PartnerRefusal(string reason, string message, bool release = false) : Exception(message)
{
    public string Reason { get; } = reason;

    /// <summary>A release was refused (rather than the feed, the document or the transport).</summary>
    public bool Release { get; } = release;
}

/// <summary>
/// Pulls the feeds partner cities publish for us and writes accepted values to measurement
/// "partner" (tag city = the partner city) at the window start. Everything a partner sends is
/// untrusted input:
/// <list type="bullet">
/// <item>every answer is bounded (Gateway:Exchange:Federation: bytes, pages, time per request and per
/// poll) and every member is read by <see cref="FeedReader"/> as the type the protocol says;</item>
/// <item>our key goes only to the origin of the configured well-known URL or the configured ApiBase,
/// over https (http on loopback only), and redirects are never followed;</item>
/// <item>each release is verified with the trusted key its signature names (pinned at first use,
/// configured, carried over by a rollover statement signed by a trusted key, or re-pinned by an
/// operator), must be for us, have a valid window and rows, and a sequence above the last one
/// accepted; the cursor is ours ("s" + last accepted sequence), not the partner's "next";</item>
/// <item>a refused answer is logged and counted, the cursor does not move past it, and the poll
/// loop carries on: no answer stops the host or the ingestion.</item>
/// </list>
/// </summary>
public sealed partial class FederationClient : BackgroundService
{
    /// <summary>Releases asked for per page.</summary>
    public const int PageSize = 100;

    /// <summary>Most keys and rollover statements read from one well-known document.</summary>
    public const int MaxPublishedKeys = 64;

    private readonly ExchangeOptions _options;
    private readonly FederationOptions _limits;
    private readonly WriterQueues _channels;
    private readonly FederationState _state;
    private readonly TimeProvider _time;
    private readonly ILogger<FederationClient> _logger;
    private readonly HttpClient _http;
    // Key refusals are logged once per key per process, not at every poll.
    // Shared by the partners' loops, which run concurrently.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _reported = new(StringComparer.Ordinal);
    private long _accepted, _rejected;

    public FederationClient(IOptions<ExchangeOptions> options, WriterQueues channels, FederationState state,
        TimeProvider time, ILogger<FederationClient> logger)
    {
        _options = options.Value;
        _limits = _options.Federation;
        _channels = channels;
        _state = state;
        _time = time;
        _logger = logger;
        _http = new HttpClient(new SocketsHttpHandler
        {
            // A redirect would carry our key to wherever the partner points: refused instead.
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(_limits.RequestTimeoutSeconds),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            MaxResponseHeadersLength = 64,
            // An answer left unread (refused as too large, or on error) closes its connection:
            // nothing more is read from it, not even to reuse the connection.
            MaxResponseDrainSize = 0,
            ResponseDrainTimeout = TimeSpan.Zero,
            UseCookies = false,
        })
        {
            Timeout = Timeout.InfiniteTimeSpan, // each request has its own, linked to the poll's
            MaxResponseContentBufferSize = Math.Min(int.MaxValue, _limits.MaxResponseBytes),
        };
    }

    /// <summary>Releases accepted since start, all partners.</summary>
    public long Accepted => Interlocked.Read(ref _accepted);

    /// <summary>Releases refused since start, all partners (other refused answers are in <see cref="FederationState"/>).</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_options.Partners.Count == 0) return;
        var loops = _options.Partners.Select(p => PollLoopAsync(p, stoppingToken)).ToArray();
        await Task.WhenAll(loops);
    }

    private async Task PollLoopAsync(PartnerFeedOptions partner, CancellationToken ct)
    {
        // Off the host's start-up path: a partner is never waited for before ingestion runs.
        await Task.Yield();
        var interval = TimeSpan.FromSeconds(Math.Max(1, partner.PollSeconds));
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await PullOnceAsync(partner, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { break; }
            catch (Exception e)
            {
                // The boundary: whatever a partner's answer provoked, the loop polls again later.
                LogPollFault(partner.Id, e);
                _state.Refused(partner.Id, "fault");
                _state.PollFailed(partner.Id, $"internal error ({e.GetType().Name}): {FeedReader.Shown(e.Message)}");
            }
            try { await Task.Delay(interval, _time, ct); } catch (OperationCanceledException) { break; }
        }
    }

    /// <summary>
    /// One poll: the well-known document, then feed pages until the partner has no more, a page
    /// cap or a time limit. Refusals and transport failures are logged, counted and shown in the
    /// state; only shutdown and faults of our own escape. Returns the releases accepted.
    /// </summary>
    public async Task<int> PullOnceAsync(PartnerFeedOptions partner, CancellationToken stoppingToken)
    {
        using var poll = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        poll.CancelAfter(TimeSpan.FromSeconds(_limits.MaxPollSeconds));
        var progress = new PollProgress();
        bool wasOk = _state.Of(partner.Id)?.Ok ?? true;
        try
        {
            await PollAsync(partner, progress, poll.Token);
            if (progress.Accepted > 0) LogPulled(partner.Id, progress.Accepted, progress.Cursor ?? "");
            if (!wasOk) LogRecovered(partner.Id);
            _state.PollSucceeded(partner.Id, $"{progress.Accepted} releases taken in the last poll; cursor {progress.Cursor ?? "(start)"}");
        }
        catch (PartnerRefusal r)
        {
            Refuse(partner, progress, r.Reason, r.Message, r.Release);
        }
        catch (FeedFormatException e)
        {
            Refuse(partner, progress, e.Reason, e.Message, release: false);
        }
        catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
        {
            Refuse(partner, progress, "poll_timeout",
                $"the poll took longer than {FederationOptions.Section}:MaxPollSeconds ({_limits.MaxPollSeconds} s)", release: false);
        }
        catch (HttpRequestException e)
        {
            LogPullFailed(partner.Id, FeedReader.Shown(e.Message));
            _state.PollFailed(partner.Id, "transport: " + FeedReader.Shown(e.Message));
        }
        catch (FederationStoreException e)
        {
            LogStoreUnreadable(partner.Id, e.Message);
            _state.PollFailed(partner.Id, e.Message);
        }
        return progress.Accepted;
    }

    private sealed class PollProgress
    {
        public int Accepted;
        public string? Cursor;
    }

    private void Refuse(PartnerFeedOptions partner, PollProgress progress, string reason, string why, bool release)
    {
        _state.Refused(partner.Id, reason);
        if (release)
        {
            Interlocked.Increment(ref _rejected);
            LogRefused(partner.Id, reason, why);
        }
        else
        {
            LogAnswerRefused(partner.Id, reason, why, progress.Cursor ?? "(start)");
        }
        _state.PollFailed(partner.Id, $"refused ({reason}): {why}");
    }

    private async Task PollAsync(PartnerFeedOptions partner, PollProgress progress, CancellationToken ct)
    {
        var folder = PrivateFiles.CreateFolder(Path.Combine(_options.DataPath, "federation", partner.Id)).FullName;
        var feedState = PartnerFeedState.Load(folder);
        progress.Cursor = feedState.Cursor;
        _state.Started(partner.Id, feedState.LastSequence);

        var wellKnown = await GetObjectAsync(new Uri(partner.WellKnownUrl), apiKey: null, "the well-known document", ct);
        var cityId = FeedReader.OptionalString(wellKnown["cityId"], "the well-known document's cityId");
        if (cityId != partner.Id)
            throw new PartnerRefusal("not_for_us", $"the well-known document names city '{FeedReader.Shown(cityId ?? "")}', expected '{partner.Id}'");
        var trusted = TrustKeys(partner, folder, wellKnown);

        var published = FeedReader.String(wellKnown["apiBase"], "the well-known document's apiBase");
        var api = FederationOrigin.CheckApiBase(published, partner.WellKnownUrl, partner.ApiBase, out var originReason, out var originWhy);
        if (api is null)
        {
            LogOriginRefused(partner.Id, originWhy!);
            throw new PartnerRefusal(originReason, originWhy + "; our key is not sent there");
        }

        for (int page = 1; ; page++)
        {
            var since = feedState.Cursor;
            var url = new Uri(api.AbsoluteUri.TrimEnd('/') + "/feed?limit=" + PageSize.ToString(CultureInfo.InvariantCulture)
                + (since is null ? "" : "&since=" + Uri.EscapeDataString(since)));
            var feed = await GetObjectAsync(url, partner.ApiKey, "the feed", ct);
            // Unknown members are ignored: the publisher adds members (a checkpoint, ...) over time.
            var addressee = FeedReader.OptionalString(feed["partner"], "the feed's partner");
            if (addressee is not null && addressee != _options.CityId)
                throw new PartnerRefusal("not_for_us", $"the feed is addressed to '{FeedReader.Shown(addressee)}', not to {_options.CityId}");
            var releases = FeedReader.Array(feed["releases"], "the feed's releases");
            var next = FeedReader.OptionalString(feed["next"], "the feed's next");
            var more = FeedReader.OptionalBool(feed["more"], "the feed's more") == true;
            if (releases.Count > PageSize)
                throw new PartnerRefusal("format", $"the feed has {releases.Count} releases on a page of at most {PageSize}");

            int acceptedHere = 0;
            foreach (var node in releases)
            {
                await AcceptReleaseAsync(partner, folder, trusted, feedState, node, ct);
                acceptedHere++;
                progress.Accepted++;
                progress.Cursor = feedState.Cursor;
            }
            KeepCheckpoint(partner, folder, trusted, feed["checkpoint"]);
            var expected = feedState.Cursor ?? "s0";
            if (next is not null && next != expected)
            {
                _state.Refused(partner.Id, "next_ignored");
                LogNextIgnored(partner.Id, FeedReader.Shown(next), expected);
            }
            if (!more) break;
            if (acceptedHere == 0)
            {
                _state.Refused(partner.Id, "no_progress");
                LogNoProgress(partner.Id, expected);
                break;
            }
            if (page >= _limits.MaxPagesPerPoll)
            {
                _state.Refused(partner.Id, "page_cap");
                LogPageCap(partner.Id, page, expected);
                break;
            }
        }
    }

    /// <summary>
    /// Keeps the partner's signed audit checkpoint (federation/&lt;partner&gt;/checkpoints.jsonl), so
    /// that its audit log can later be held to it with verify-audit. A partner that serves none is
    /// left alone (older publishers); one that is unsigned, of another key, or that goes back on an
    /// earlier checkpoint (a lower sequence, or the same one with another head) is refused, logged
    /// and counted. Releases are verified one by one in any case.
    /// </summary>
    private void KeepCheckpoint(PartnerFeedOptions partner, string folder, PartnerTrustedKeys trusted, JsonNode? checkpoint)
    {
        if (checkpoint is null) return;
        var kept = Audit.PartnerCheckpoints.Keep(folder, checkpoint as JsonObject, id => trusted.Find(id)?.PublicKeyPem, partner.Id);
        if (kept.Accepted) return;
        _state.Refused(partner.Id, "checkpoint");
        LogCheckpointRefused(partner.Id, kept.Reason);
    }

    /// <summary>Verifies, checks and writes one release, then records it; throws a release refusal otherwise.</summary>
    private async Task AcceptReleaseAsync(PartnerFeedOptions partner, string folder, PartnerTrustedKeys trusted, PartnerFeedState feedState,
        JsonNode? node, CancellationToken ct)
    {
        string label = "a release";
        try
        {
            var envelope = FeedReader.Object(node, "a release");
            if (envelope["payload"] is JsonObject peek && peek["sequence"] is JsonValue s)
                label = "release #" + FeedReader.Shown(s.ToJsonString());
            var signature = FeedReader.Object(envelope["signature"], "a release's signature");
            var keyId = FeedReader.String(signature["keyId"], "a release's signature.keyId");
            var key = trusted.Find(keyId)
                ?? throw new PartnerRefusal("untrusted_key", $"{label} is signed with key {FeedReader.Shown(keyId)}, which is not trusted ({trusted.FilePath})", release: true);
            if (!SignedDocument.VerifyEnvelope(envelope, key.PublicKeyPem, out var error))
                throw new PartnerRefusal("signature", $"{label}: signature: {error}", release: true);
            var payload = FeedReader.Object(envelope["payload"], "a release's payload");
            if (FeedReader.OptionalString(payload["city"], "payload.city") != partner.Id
                || FeedReader.OptionalString(payload["partner"], "payload.partner") != _options.CityId)
                throw new PartnerRefusal("not_for_us", $"{label} is not from {partner.Id} to {_options.CityId}", release: true);
            long sequence = FeedReader.Integer(payload["sequence"], "payload.sequence");
            if (sequence < 1) throw new FeedFormatException($"payload.sequence {sequence} is not positive");
            var (start, _) = FeedReader.Window(payload["window"], _time.GetUtcNow());
            var rows = FeedReader.Array(payload["rows"], "payload.rows");
            if (rows.Count > _limits.MaxRowsPerRelease)
                throw new PartnerRefusal("too_many_rows",
                    $"{label} has {rows.Count} rows, more than {FederationOptions.Section}:MaxRowsPerRelease ({_limits.MaxRowsPerRelease})", release: true);
            var points = new List<Point>(rows.Count);
            var received = new List<ReceivedValue>(rows.Count);
            long time = UnixTime.ToNs(start);
            for (int i = 0; i < rows.Count; i++)
            {
                var row = FeedReader.Object(rows[i], $"payload.rows[{i}]");
                var district = FeedReader.Name(row["district"], $"payload.rows[{i}].district");
                var domain = FeedReader.Name(row["domain"], $"payload.rows[{i}].domain");
                var metric = FeedReader.Name(row["metric"], $"payload.rows[{i}].metric");
                var aggregate = FeedReader.Name(row["aggregate"], $"payload.rows[{i}].aggregate");
                var p = new Point("partner",
                [
                    new("city", partner.Id), new("district", district), new("domain", domain), new("metric", metric), new("aggregate", aggregate),
                ], time) { Origin = "federation:" + partner.Id };
                double value = FeedReader.FiniteNumber(row["value"], $"payload.rows[{i}].value");
                p.Fields.Add(PointField.Of("value", value));
                p.Fields.Add(PointField.Of("sequence", sequence));
                points.Add(p);
                received.Add(new ReceivedValue(start, district, domain, metric, aggregate, value));
            }
            var id = Convert.ToHexStringLower(SHA256.HashData(CanonicalJson.Serialize(payload)));
            if (feedState.Contains(id))
                throw new PartnerRefusal("replay", $"{label} was accepted before (served again)", release: true);
            if (sequence <= feedState.LastSequence)
                throw new PartnerRefusal("out_of_order", $"{label} is not after the last accepted #{feedState.LastSequence}", release: true);
            // Points first, state after: a crash in between writes the same points again (same series, same time).
            foreach (var p in points) await _channels.Points.Writer.WriteAsync(p, ct);
            feedState.Accept(sequence, id);
            // For the transparency page's "partner city" charts; losing it loses a chart point only.
            try { PartnerReleaseHistory.Append(folder, sequence, start, received); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { LogHistoryNotKept(partner.Id, e.Message); }
            Interlocked.Increment(ref _accepted);
            _state.Accepted(partner.Id, sequence);
        }
        catch (FeedFormatException e)
        {
            throw new PartnerRefusal(e.Reason, $"{label}: {e.Message}", release: true);
        }
    }

    /// <summary>
    /// The partner's trusted keys after this document: pinned at first use (or the configured key),
    /// extended by rollover statements that a trusted key signed. A published key that is still not
    /// trusted is refused and logged once: an operator must re-pin it.
    /// </summary>
    private PartnerTrustedKeys TrustKeys(PartnerFeedOptions partner, string folder, JsonObject wellKnown)
    {
        var trusted = PartnerTrustedKeys.Load(folder);
        var now = _time.GetUtcNow();
        var currentPem = FeedReader.String(wellKnown["publicKey"], "the well-known document's publicKey");
        var currentId = ReleaseSigner.KeyIdOf(currentPem)
            ?? throw new FeedFormatException("the well-known document's publicKey is not a P-256 \"PUBLIC KEY\" PEM");
        var docKeyId = FeedReader.OptionalString(wellKnown["keyId"], "the well-known document's keyId");
        if (docKeyId is not null && docKeyId != currentId)
            throw new FeedFormatException($"the well-known document's keyId {FeedReader.Shown(docKeyId)} is not the id of its publicKey ({currentId})");

        var published = new Dictionary<string, string>(StringComparer.Ordinal) { [currentId] = currentPem };
        if (wellKnown["keys"] is not null)
        {
            var keys = FeedReader.Array(wellKnown["keys"], "the well-known document's keys");
            if (keys.Count > MaxPublishedKeys) throw new FeedFormatException($"the well-known document lists {keys.Count} keys (at most {MaxPublishedKeys})");
            for (int i = 0; i < keys.Count; i++)
            {
                var k = FeedReader.Object(keys[i], $"keys[{i}]");
                var id = FeedReader.String(k["keyId"], $"keys[{i}].keyId");
                var pem = FeedReader.String(k["publicKey"], $"keys[{i}].publicKey");
                if (ReleaseSigner.KeyIdOf(pem) != id) throw new FeedFormatException($"keys[{i}].keyId is not the id of its publicKey");
                // Informational here (trust comes from pins and rollover statements): any ISO-8601 offset.
                FeedReader.Time(k["validFrom"], $"keys[{i}].validFrom");
                if (k["validUntil"] is not null) FeedReader.Time(k["validUntil"], $"keys[{i}].validUntil");
                published[id] = pem;
            }
        }

        if (!string.IsNullOrWhiteSpace(partner.PublicKeyPem))
        {
            // Validated at start: a configured key is a P-256 public key.
            var configuredId = ReleaseSigner.KeyIdOf(partner.PublicKeyPem)!;
            trusted.TrustForThisRun(new TrustedKey(configuredId, partner.PublicKeyPem, "configured (Gateway:Exchange:Partners:N:PublicKeyPem)", now));
        }
        else if (trusted.IsEmpty)
        {
            // First use: what this one document says is all there is to go on; its keys list is as
            // good (and as weak) as its current key.
            foreach (var (id, pem) in published)
                trusted.Add(new TrustedKey(id, pem, id == currentId ? "first use" : "first use (listed in keys)", now));
            LogPinned(partner.Id, currentId);
        }

        if (wellKnown["rollovers"] is not null)
        {
            var rollovers = FeedReader.Array(wellKnown["rollovers"], "the well-known document's rollovers");
            if (rollovers.Count > MaxPublishedKeys) throw new FeedFormatException($"the well-known document has {rollovers.Count} rollovers (at most {MaxPublishedKeys})");
            ApplyRollovers(partner, trusted, rollovers, now);
        }

        foreach (var (id, _) in published)
        {
            if (trusted.Find(id) is not null || !_reported.TryAdd(partner.Id + "/key/" + id, true)) continue;
            _state.Refused(partner.Id, "untrusted_key");
            LogKeyNotTrusted(partner.Id, id, trusted.FilePath);
        }
        return trusted;
    }

    /// <summary>Rollover statements in any order: a chain A→B→C is followed as far as trust reaches.</summary>
    private void ApplyRollovers(PartnerFeedOptions partner, PartnerTrustedKeys trusted, JsonArray rollovers, DateTimeOffset now)
    {
        var pending = new List<(int Index, JsonObject Envelope, string SignerId)>();
        for (int i = 0; i < rollovers.Count; i++)
        {
            var envelope = FeedReader.Object(rollovers[i], $"rollovers[{i}]");
            var signer = FeedReader.String(FeedReader.Object(envelope["signature"], $"rollovers[{i}].signature")["keyId"], $"rollovers[{i}].signature.keyId");
            pending.Add((i, envelope, signer));
        }
        bool changed = true;
        while (changed && pending.Count > 0)
        {
            changed = false;
            foreach (var statement in pending.ToArray())
            {
                var signer = trusted.Find(statement.SignerId);
                if (signer is null) continue; // perhaps after another statement of this document
                pending.Remove(statement);
                var problem = CheckRollover(partner, statement.Envelope, signer, out var newId, out var newPem, out var validFrom);
                if (problem is not null)
                {
                    if (_reported.TryAdd(partner.Id + "/rollover/" + statement.Index + "/" + statement.SignerId, true))
                    {
                        _state.Refused(partner.Id, "rollover");
                        LogRolloverRefused(partner.Id, statement.Index, problem);
                    }
                    continue;
                }
                if (trusted.Find(newId!) is not null) continue;
                trusted.Add(new TrustedKey(newId!, newPem!, "rollover signed by " + signer.KeyId, now, validFrom));
                LogRolledOver(partner.Id, signer.KeyId, newId!);
                changed = true;
            }
        }
    }

    private static string? CheckRollover(PartnerFeedOptions partner, JsonObject envelope, TrustedKey signer,
        out string? newId, out string? newPem, out string? validFrom)
    {
        newId = newPem = validFrom = null;
        if (!SignedDocument.VerifyEnvelope(envelope, signer.PublicKeyPem, out var error)) return "signature: " + error;
        try
        {
            var payload = FeedReader.Object(envelope["payload"], "payload");
            if (FeedReader.OptionalString(payload["type"], "payload.type") != "key-rollover") return "payload.type is not \"key-rollover\"";
            if (FeedReader.OptionalString(payload["city"], "payload.city") != partner.Id) return $"payload.city is not {partner.Id}";
            if (FeedReader.OptionalString(payload["previousKeyId"], "payload.previousKeyId") != signer.KeyId)
                return $"payload.previousKeyId does not name the signing key {signer.KeyId}";
            newPem = FeedReader.String(payload["newPublicKey"], "payload.newPublicKey");
            newId = FeedReader.String(payload["newKeyId"], "payload.newKeyId");
            if (ReleaseSigner.KeyIdOf(newPem) != newId) return "payload.newKeyId is not the id of payload.newPublicKey";
            validFrom = FeedReader.Time(payload["validFrom"], "payload.validFrom").ToUniversalTime().ToString("O", CultureInfo.InvariantCulture);
            return null;
        }
        catch (FeedFormatException e)
        {
            return e.Message;
        }
    }

    /// <summary>
    /// GET one JSON object from a partner within the request timeout, the body read through a
    /// bounded buffer: a declared length over the cap is refused before reading, a body that grows
    /// past it as soon as it does. A redirect is refused, never followed.
    /// </summary>
    private async Task<JsonObject> GetObjectAsync(Uri url, string? apiKey, string what, CancellationToken poll)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(poll);
        timeout.CancelAfter(TimeSpan.FromSeconds(_limits.RequestTimeoutSeconds));
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            if (apiKey is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            int status = (int)response.StatusCode;
            if (status is >= 300 and < 400)
            {
                var to = response.Headers.Location is { } l ? (l.IsAbsoluteUri ? $"{l.Scheme}://{l.Authority}" : "a relative location") : "nowhere";
                throw new PartnerRefusal("redirect", $"{what} answered HTTP {status} to {to}; redirects are not followed");
            }
            if (!response.IsSuccessStatusCode) throw new PartnerRefusal("http_status", $"{what} answered HTTP {status}");
            if (response.Content.Headers.ContentLength is long declared && declared > _limits.MaxResponseBytes)
                throw new PartnerRefusal("too_large", $"{what} declares {declared} bytes, more than {FederationOptions.Section}:MaxResponseBytes ({_limits.MaxResponseBytes})");
            await using var body = await response.Content.ReadAsStreamAsync(timeout.Token);
            var (buffer, length) = await ReadBoundedAsync(body, what, timeout.Token);
            try
            {
                return FeedReader.ParseObject(buffer.AsSpan(0, length), what);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !poll.IsCancellationRequested)
        {
            throw new PartnerRefusal("timeout", $"{what} did not answer within {FederationOptions.Section}:RequestTimeoutSeconds ({_limits.RequestTimeoutSeconds} s)");
        }
    }

    /// <summary>Reads at most MaxResponseBytes into a pooled buffer that never grows past the cap + 1.</summary>
    private async Task<(byte[] Buffer, int Length)> ReadBoundedAsync(Stream body, string what, CancellationToken ct)
    {
        int cap = (int)Math.Min(int.MaxValue - 1, _limits.MaxResponseBytes);
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(64 * 1024, cap + 1));
        int length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)buffer.Length * 2, cap + 1L));
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
                int room = Math.Min(buffer.Length, cap + 1) - length;
                int n = await body.ReadAsync(buffer.AsMemory(length, room), ct);
                if (n == 0) return (buffer, length);
                length += n;
                if (length > cap)
                    throw new PartnerRefusal("too_large", $"{what} is longer than {FederationOptions.Section}:MaxResponseBytes ({_limits.MaxResponseBytes} bytes)");
            }
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    public override void Dispose()
    {
        _http.Dispose();
        base.Dispose();
    }

    [LoggerMessage(EventId = 8101, Level = LogLevel.Information, Message = "Pulled {Count} releases from {Partner}; cursor {Cursor}")]
    private partial void LogPulled(string partner, int count, string cursor);

    [LoggerMessage(EventId = 8102, Level = LogLevel.Error, Message = "Refused a release from {Partner} ({Reason}): {Why}. Nothing after it is taken until this is resolved")]
    private partial void LogRefused(string partner, string reason, string why);

    [LoggerMessage(EventId = 8103, Level = LogLevel.Warning, Message = "Pulling from {Partner} failed: {Error}")]
    private partial void LogPullFailed(string partner, string error);

    [LoggerMessage(EventId = 8104, Level = LogLevel.Information, Message = "Pinned the public key {KeyId} of {Partner} at first use")]
    private partial void LogPinned(string partner, string keyId);

    [LoggerMessage(EventId = 8110, Level = LogLevel.Warning, Message = "Refused an answer from {Partner} ({Reason}): {Why}. The cursor stays at {Cursor}; polling goes on")]
    private partial void LogAnswerRefused(string partner, string reason, string why, string cursor);

    [LoggerMessage(EventId = 8111, Level = LogLevel.Error, Message = "Polling {Partner} failed unexpectedly; polling goes on")]
    private partial void LogPollFault(string partner, Exception error);

    [LoggerMessage(EventId = 8112, Level = LogLevel.Error, Message = "Our key is not sent to {Partner}'s apiBase: {Why}. Set Gateway:Exchange:Partners:N:ApiBase if the partner really serves its API elsewhere")]
    private partial void LogOriginRefused(string partner, string why);

    [LoggerMessage(EventId = 8121, Level = LogLevel.Error, Message = "Refused the audit checkpoint {Partner} served: {Why}. Keep the earlier checkpoints: they are what its audit log can be held to")]
    private partial void LogCheckpointRefused(string partner, string why);

    [LoggerMessage(EventId = 8113, Level = LogLevel.Warning, Message = "{Partner}'s feed says next is {Next}, but what was verified gives {Cursor}: the cursor is ours, the partner's next is ignored")]
    private partial void LogNextIgnored(string partner, string next, string cursor);

    [LoggerMessage(EventId = 8114, Level = LogLevel.Warning, Message = "{Partner} still has more after {Pages} pages (Gateway:Exchange:Federation:MaxPagesPerPoll); the next poll goes on from {Cursor}")]
    private partial void LogPageCap(string partner, int pages, string cursor);

    [LoggerMessage(EventId = 8115, Level = LogLevel.Warning, Message = "{Partner}'s feed says it has more but gave no release after {Cursor}; the next poll asks again")]
    private partial void LogNoProgress(string partner, string cursor);

    [LoggerMessage(EventId = 8116, Level = LogLevel.Error, Message = "{Partner} publishes key {KeyId}, which is not trusted: no rollover statement signed by a trusted key introduces it. Its releases are refused; the operator must re-pin after confirming the key with the partner ('Gateway exchange trust-partner-key --partner <id> --public-key <file>'; trusted keys: {File})")]
    private partial void LogKeyNotTrusted(string partner, string keyId, string file);

    [LoggerMessage(EventId = 8117, Level = LogLevel.Information, Message = "{Partner} rolled its signing key over from {PreviousKeyId} to {NewKeyId} (statement signed by the previous key); both are trusted")]
    private partial void LogRolledOver(string partner, string previousKeyId, string newKeyId);

    [LoggerMessage(EventId = 8118, Level = LogLevel.Error, Message = "Refused rollover statement #{Index} of {Partner}: {Why}")]
    private partial void LogRolloverRefused(string partner, int index, string why);

    [LoggerMessage(EventId = 8119, Level = LogLevel.Error, Message = "The federation files of {Partner} cannot be used: {Error}. Nothing is pulled from it until they are fixed")]
    private partial void LogStoreUnreadable(string partner, string error);

    [LoggerMessage(EventId = 8300, Level = LogLevel.Warning, Message = "The values of {Partner}'s release are stored but not kept for the transparency page: {Error}")]
    private partial void LogHistoryNotKept(string partner, string error);

    [LoggerMessage(EventId = 8120, Level = LogLevel.Information, Message = "Pulling from {Partner} works again")]
    private partial void LogRecovered(string partner);
}
