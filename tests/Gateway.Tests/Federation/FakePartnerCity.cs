using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CityGateway.Exchange.Signing;
using CityGateway.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace CityGateway.Tests.Federation;

/// <summary>One request a listener received, as the federation client sent it.</summary>
public sealed record SeenRequest(string Host, string Path, string? Since, string? Authorization, DateTimeOffset At);

/// <summary>
/// A real HTTP listener (Kestrel on 127.0.0.1, a free port) that records every request it gets.
/// The fake partner city is one; the "foreign origin" a hostile partner points our key at is another.
/// </summary>
public class RecordingListener : IAsyncDisposable
{
    protected WebApplication App { get; }
    public ConcurrentQueue<SeenRequest> Seen { get; } = new();
    public int Port { get; }
    public string Url => $"http://127.0.0.1:{Port}";

    protected RecordingListener()
    {
        Port = ServiceProcess.FreePort();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls(Url);
        App = builder.Build();
        App.Use(async (http, next) =>
        {
            Seen.Enqueue(new SeenRequest(http.Request.Host.Value ?? "", http.Request.Path.Value ?? "", http.Request.Query["since"].FirstOrDefault(),
                http.Request.Headers.Authorization.FirstOrDefault(), DateTimeOffset.UtcNow));
            await next(http);
        });
    }

    public static async Task<RecordingListener> StartForeignAsync()
    {
        var l = new RecordingListener();
        await l.StartAsyncCore();
        return l;
    }

    protected Task StartAsyncCore() => StartCoreAsync();

    private async Task StartCoreAsync()
    {
        App.MapFallback(() => Results.Text("nothing here", statusCode: 404));
        await App.StartAsync();
    }

    /// <summary>Requests that carried <paramref name="apiKey"/> (as a bearer token or anywhere in the header).</summary>
    public SeenRequest[] WithKey(string apiKey) => Seen.Where(s => s.Authorization?.Contains(apiKey, StringComparison.Ordinal) == true).ToArray();

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>
/// Partner cities served by one listener, each under its own path prefix (/{id}/...). A persona
/// behaves like the real publisher by default (signed releases shaped as ReleaseJob makes them,
/// "since"/"limit"/"next"/"more" as ExchangeEndpoints serves them) and can be scripted to answer
/// anything else.
/// </summary>
public sealed class FakePartnerCity : RecordingListener
{
    public ConcurrentDictionary<string, Persona> Personas { get; } = new(StringComparer.Ordinal);

    private FakePartnerCity()
    {
        App.MapGet("/{id}/.well-known/city-exchange", (string id) =>
            Personas.GetValueOrDefault(id) is { } p ? p.WellKnown(p) : Results.NotFound());
        App.MapGet("/{id}/api/feed", async (string id, HttpContext http) =>
        {
            if (Personas.GetValueOrDefault(id) is not { } p) return Results.NotFound();
            var since = http.Request.Query["since"].FirstOrDefault();
            long after = since is null ? 0 : long.Parse(since.AsSpan(1), CultureInfo.InvariantCulture);
            Interlocked.Increment(ref p.FeedRequests);
            return await p.Feed(p, after, http);
        });
    }

    public static async Task<FakePartnerCity> StartAsync()
    {
        var city = new FakePartnerCity();
        await city.StartAsyncCore();
        return city;
    }

    public string WellKnownUrl(string id) => $"{Url}/{id}/.well-known/city-exchange";

    public Persona Add(string id, string ourCity)
    {
        var p = new Persona(id, ourCity, this);
        Personas[id] = p;
        return p;
    }

    /// <summary>Feed requests this listener received for one persona (any host name).</summary>
    public SeenRequest[] FeedRequests(string id) => Seen.Where(s => s.Path == $"/{id}/api/feed").ToArray();

    /// <summary>Well-known requests for one persona: one at the start of every poll.</summary>
    public SeenRequest[] Polls(string id) => Seen.Where(s => s.Path == $"/{id}/.well-known/city-exchange").ToArray();
}

/// <summary>One scripted partner city.</summary>
public sealed class Persona
{
    public static readonly DateTimeOffset Base = new DateTimeOffset(DateTime.UtcNow.Date, TimeSpan.Zero).AddDays(-20);

    public Persona(string id, string ourCity, FakePartnerCity city)
    {
        Id = id;
        OurCity = ourCity;
        City = city;
        Signer = ReleaseSigner.Generate();
        ApiBase = $"{city.Url}/{id}/api";
        WellKnownUrl = city.WellKnownUrl(id);
        WellKnown = p => Results.Json(p.Document());
        Feed = (p, after, _) => Task.FromResult(p.Serve(after));
    }

    public string Id { get; }
    public string OurCity { get; }
    public FakePartnerCity City { get; }
    public long FeedRequests;

    /// <summary>The key the well-known document publishes as current (and signs new releases with).</summary>
    public ReleaseSigner Signer { get; set; }

    public string ApiBase { get; set; }

    /// <summary>Where our gateway is configured to find this city's document (normally on the fake city's listener).</summary>
    public string WellKnownUrl { get; set; }

    /// <summary>Extra members of the well-known document (keys, rollovers, ...).</summary>
    public ConcurrentDictionary<string, JsonNode?> Extra { get; } = new();

    /// <summary>The releases this city has made for us, in sequence order.</summary>
    public List<JsonObject> Releases { get; } = [];

    public Func<Persona, IResult> WellKnown { get; set; }

    /// <summary>(persona, since-sequence, request) → answer of /feed.</summary>
    public Func<Persona, long, HttpContext, Task<IResult>> Feed { get; set; }

    public JsonObject Document()
    {
        var doc = new JsonObject
        {
            ["cityId"] = Id, ["cityName"] = Id.ToUpperInvariant(), ["algorithm"] = "ES256",
            ["keyId"] = Signer.KeyId, ["publicKey"] = Signer.PublicKeyPem, ["apiBase"] = ApiBase,
        };
        foreach (var (k, v) in Extra) doc[k] = v?.DeepClone();
        return doc;
    }

    /// <summary>What the real publisher answers: releases after <paramref name="after"/>, at most 100.</summary>
    public IResult Serve(long after, int limit = 100)
    {
        List<JsonObject> page;
        lock (Releases) page = Releases.Where(r => Seq(r) > after).Take(limit + 1).ToList();
        bool more = page.Count > limit;
        page = page.Take(limit).ToList();
        return FeedResult(page, page.Count > 0 ? "s" + Seq(page[^1]) : "s" + after, more);
    }

    /// <summary>Members the feed object carries besides the protocol's (a publisher adds "checkpoint").</summary>
    public ConcurrentDictionary<string, JsonNode?> FeedExtra { get; } = new();

    public IResult FeedResult(IEnumerable<JsonObject> releases, string? next, bool more)
    {
        var feed = new JsonObject
        {
            ["partner"] = OurCity,
            ["releases"] = new JsonArray(releases.Select(r => (JsonNode)r.DeepClone()).ToArray()),
            ["next"] = next,
            ["more"] = more,
        };
        foreach (var (k, v) in FeedExtra) feed[k] = v?.DeepClone();
        return Results.Json(feed);
    }

    public void Add(params JsonObject[] releases)
    {
        lock (Releases) Releases.AddRange(releases);
    }

    public static long Seq(JsonObject envelope) => envelope["payload"]!["sequence"]!.GetValue<long>();

    /// <summary>The payload ReleaseJob makes, for window <paramref name="sequence"/> × 15 minutes after <see cref="Base"/>.</summary>
    public JsonObject Payload(long sequence, double value = 12.5)
    {
        var start = Base.AddMinutes(15 * sequence);
        return new JsonObject
        {
            ["city"] = Id, ["partner"] = OurCity, ["agreementVersion"] = 1, ["sequence"] = sequence,
            ["window"] = new JsonObject { ["start"] = Utc(start), ["end"] = Utc(start.AddMinutes(15)) },
            ["epsilon"] = 0.5,
            ["rows"] = new JsonArray(
                new JsonObject { ["district"] = "harbour", ["domain"] = "environment", ["metric"] = "pm25", ["aggregate"] = "mean", ["value"] = value },
                new JsonObject { ["district"] = "old-town", ["domain"] = "traffic", ["metric"] = "intensity", ["aggregate"] = "sum", ["value"] = 40 + sequence }),
        };
    }

    public static string Utc(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);

    public JsonObject Sign(JsonObject payload, ReleaseSigner? signer = null) => SignedDocument.Create(payload, signer ?? Signer);

    public JsonObject Release(long sequence, ReleaseSigner? signer = null) => Sign(Payload(sequence), signer);

    public Persona WithReleases(params long[] sequences)
    {
        lock (Releases) foreach (var s in sequences) Releases.Add(Release(s));
        return this;
    }

    /// <summary>A rollover statement: <paramref name="from"/> signs that <paramref name="to"/> follows it.</summary>
    public JsonObject Rollover(ReleaseSigner from, ReleaseSigner to, ReleaseSigner? signedBy = null) => SignedDocument.Create(new JsonObject
    {
        ["type"] = "key-rollover", ["city"] = Id, ["previousKeyId"] = from.KeyId, ["newKeyId"] = to.KeyId,
        ["newPublicKey"] = to.PublicKeyPem, ["validFrom"] = Utc(DateTimeOffset.UtcNow),
    }, signedBy ?? from);

    public static JsonObject KeyEntry(ReleaseSigner key, DateTimeOffset from, DateTimeOffset? until) => new()
    {
        ["keyId"] = key.KeyId, ["publicKey"] = key.PublicKeyPem, ["validFrom"] = Utc(from), ["validUntil"] = until is { } u ? Utc(u) : null,
    };

    /// <summary>A raw body, as a careless partner might send it.</summary>
    public static IResult Raw(string body, string contentType = "application/json") =>
        Results.Bytes(Encoding.UTF8.GetBytes(body), contentType);

    /// <summary>A JSON text of a node, for scripting answers with members of wrong types.</summary>
    public static string Json(JsonNode node) => node.ToJsonString(new JsonSerializerOptions());
}
