using System.Globalization;
using System.Text;
using CityGateway.Core;
using CityGateway.Health;
using CityGateway.Journal;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace CityGateway.Quarantine;

public sealed class OperationsOptions
{
    /// <summary>Key for the operator API (quarantine). Empty: the operator API answers 503. Set it
    /// through the environment (Gateway__Operations__ApiKey), not in a file under version control.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Failed operator API authentications per client address per minute; beyond it the
    /// address gets 429 without its key being checked, until the minute is over.</summary>
    public int AuthFailuresPerMinute { get; set; } = 10;

    /// <summary>Largest request body the operator listener accepts (413 beyond); 1 MiB by default.</summary>
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;
}

public sealed record ReplayRequest(string[]? Ids, string? Reason, DateTimeOffset? Since, bool Force = false);

/// <summary>
/// The operator API over the quarantine: list entries (filter by reason, time, device) and replay
/// selected ones through the pipeline after the cause was fixed (a device added to the registry,
/// a unit added, ...). Every request needs the operator key: "Authorization: Bearer KEY" or
/// "X-Api-Key: KEY".
/// </summary>
public static class QuarantineEndpoints
{
    public const int MaxLimit = 1000;

    public static void Map(WebApplication app)
    {
        // The key is checked by OperatorApiGuard before the endpoint runs, so before a body is bound.
        OperatorApiGuard.Use(app);
        var group = app.MapGroup("/api/quarantine").WithMetadata(OperatorKeyRequired.Instance).OnOperatorListener();
        group.MapGet("", List);
        group.MapPost("/replay", Replay);
    }

    private static IResult List(QuarantineStore store, string? reason, string? since, string? device, int? limit)
    {
        if (!TryParseSince(since, out var from)) return BadSince(since!);
        int take = Math.Clamp(limit ?? 100, 1, MaxLimit);
        var replayed = store.ReplayedIds();
        var listing = Select(store, reason, from, device);
        var matching = listing.Entries;
        var page = matching.TakeLast(take).Select(e => new
        {
            e.Id, e.Time, e.Reason, e.Detail, e.Source, e.Topic, e.Route, e.Device, e.Field, e.ReceivedAtNs,
            e.Payload, e.PayloadEncoding, e.PayloadBytes,
            replayable = Replayable(e) is null,
            replayed = e.Id is not null && replayed.Contains(e.Id),
        });
        return Results.Json(new
        {
            total = matching.Count,
            returned = Math.Min(take, matching.Count),
            countsByReason = listing.CountsByReason,
            sinceStart = new
            {
                quarantined = store.Total,
                countsByReason = store.CountsByReason,
                removedByRotation = store.RemovedByRotation,
            },
            entries = page,
        });
    }

    /// <summary>The stored entries that match a listing's filter, and their count by reason.</summary>
    internal sealed record Listing(List<QuarantineEntry> Entries, Dictionary<string, int> CountsByReason);

    /// <summary>
    /// The stored entries (rotated files included) that match; <c>total</c> and <c>countsByReason</c>
    /// are both over these, so they agree. Counts since start, entries rotated away included, are the store's.
    /// </summary>
    internal static Listing Select(QuarantineStore store, string? reason, DateTimeOffset? from, string? device)
    {
        var matching = store.ReadAll()
            .Where(e => (reason is null || e.Reason == reason) && (from is null || e.Time >= from) && (device is null || e.Device == device))
            .ToList();
        return new Listing(matching, matching.CountBy(e => e.Reason).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal));
    }

    private static IResult Replay(ReplayRequest? request, QuarantineStore store, IFrameLog log)
    {
        if (request is null || (request.Ids is not { Length: > 0 } && request.Reason is null && request.Since is null))
            return Results.Problem(statusCode: 400, title: "Nothing selected",
                detail: "Send {\"ids\": [...]} or a filter {\"reason\": \"unknown_device\", \"since\": \"2026-01-01T00:00:00Z\"}.");
        var outcome = ReplaySelected(request, store, log);
        return Results.Json(new { replayed = outcome.ReplayedIds.Count, frames = outcome.Frames, replayedIds = outcome.ReplayedIds, skipped = outcome.Skipped });
    }

    /// <summary>What a replay did: the selected entries replayed, the frames put back into the journal, and what was skipped and why.</summary>
    internal sealed record ReplayOutcome(List<string> ReplayedIds, int Frames, List<object> Skipped);

    /// <summary>
    /// Puts the frames of the selected entries back into the journal, each frame once: a message
    /// with several bad fields has an entry per field, and they all name the same frame (source,
    /// topic, receive time, payload). All stored entries of a replayed frame are marked replayed.
    /// </summary>
    internal static ReplayOutcome ReplaySelected(ReplayRequest request, QuarantineStore store, IFrameLog log)
    {
        var ids = request.Ids is { Length: > 0 } ? new HashSet<string>(request.Ids) : null;
        var already = store.ReplayedIds();
        var stored = store.ReadAll().ToList();
        var selected = stored.Where(e =>
            (ids is null || (e.Id is not null && ids.Contains(e.Id))) &&
            (request.Reason is null || e.Reason == request.Reason) &&
            (request.Since is null || e.Time >= request.Since)).ToList();
        var skipped = new List<object>();
        var done = new List<string>();
        var frames = new Dictionary<FrameKey, QuarantineEntry>();
        foreach (var e in selected)
        {
            if (!request.Force && e.Id is not null && already.Contains(e.Id))
            {
                skipped.Add(new { e.Id, why = "already replayed (send \"force\": true to replay again)" });
                continue;
            }
            if (Replayable(e) is { } why)
            {
                skipped.Add(new { e.Id, why });
                continue;
            }
            frames.TryAdd(FrameKey.Of(e), e);
            done.Add(e.Id!);
        }
        foreach (var e in frames.Values)
        {
            var bytes = e.PayloadEncoding == "base64" ? Convert.FromBase64String(e.Payload!) : Encoding.UTF8.GetBytes(e.Payload!);
            var source = e.Source!.EndsWith(RawFrame.ReplaySuffix, StringComparison.Ordinal) ? e.Source : e.Source + RawFrame.ReplaySuffix;
            log.Append(new RawFrame(source, e.Topic!, bytes, e.ReceivedAtNs!.Value, 1, bytes.Length));
        }
        var siblings = stored.Where(e => e.Id is not null && Replayable(e) is null && frames.ContainsKey(FrameKey.Of(e))).Select(e => e.Id!);
        store.MarkReplayed(done.Concat(siblings).Distinct().Where(id => !already.Contains(id)).ToList());
        if (ids is not null)
            foreach (var missing in ids.Except(selected.Select(e => e.Id!)))
                skipped.Add(new { id = missing, why = "no such entry" });
        return new ReplayOutcome(done, frames.Count, skipped);
    }

    /// <summary>Which frame an entry came from; a replayed frame's entries name the frame it replayed.</summary>
    private readonly record struct FrameKey(string Source, string Topic, long ReceivedAtNs, string Payload, string? Encoding)
    {
        public static FrameKey Of(QuarantineEntry e) =>
            new(e.Source!.Replace(RawFrame.ReplaySuffix, ""), e.Topic!, e.ReceivedAtNs!.Value, e.Payload!, e.PayloadEncoding);
    }

    /// <summary>Why an entry cannot be replayed, or null when it can.</summary>
    private static string? Replayable(QuarantineEntry e)
    {
        if (e.Id is null) return "entry has no id";
        var kind = e.Source?.Replace(RawFrame.ReplaySuffix, "");
        if (kind is not ("mqtt" or "serial")) return $"entries from '{e.Source}' are not frames";
        if (e.Topic is null || e.ReceivedAtNs is null || e.Payload is null) return "entry has no frame";
        int stored = e.PayloadEncoding == "base64" ? (e.Payload.Length / 4 * 3) - e.Payload.Count(c => c == '=') : Encoding.UTF8.GetByteCount(e.Payload);
        if (e.PayloadBytes is { } original && original != stored) return $"only {stored} of {original} payload bytes were kept";
        return null;
    }

    private static bool TryParseSince(string? since, out DateTimeOffset? from)
    {
        from = null;
        if (string.IsNullOrEmpty(since)) return true;
        if (!DateTimeOffset.TryParse(since, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t)) return false;
        from = t;
        return true;
    }

    private static IResult BadSince(string since) => Results.Problem(statusCode: 400, title: "Bad 'since'",
        detail: $"'{since}' is not an ISO 8601 time such as 2026-11-21T08:00:00Z.");
}
