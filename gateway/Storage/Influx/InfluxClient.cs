using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace CityGateway.Storage.Influx;

public enum WriteOutcome
{
    /// <summary>2xx: the batch is stored.</summary>
    Accepted,
    /// <summary>413: the batch is too large; split it.</summary>
    TooLarge,
    /// <summary>400/404/422 and other 4xx: the server refused (some of) the points; isolate and quarantine them.</summary>
    Rejected,
    /// <summary>401/403: credentials are wrong; stop writing and keep the data.</summary>
    Unauthorised,
    /// <summary>429, 5xx, timeouts, connection refused: try again later.</summary>
    Retry,
}

public readonly record struct WriteResult(WriteOutcome Outcome, int StatusCode, string Message, TimeSpan? RetryAfter = null);

/// <summary>InfluxDB's HTTP API: line protocol writes (v1, v2 or v3 endpoint) and InfluxQL queries.</summary>
public sealed class InfluxClient : IDisposable
{
    private readonly InfluxOptions _options;
    private readonly HttpClient _http;
    private readonly Uri _writeUri;

    public InfluxClient(InfluxOptions options, HttpMessageHandler? handler = null)
    {
        _options = options;
        _http = new HttpClient(handler ?? new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            ConnectTimeout = TimeSpan.FromSeconds(5),
        })
        {
            BaseAddress = new Uri(options.Url.TrimEnd('/') + "/"),
            Timeout = TimeSpan.FromSeconds(Math.Max(1, options.TimeoutSeconds)),
        };
        var auth = AuthorizationHeader(options);
        if (auth is not null) _http.DefaultRequestHeaders.Authorization = auth;
        _writeUri = new Uri(_http.BaseAddress, WritePath(options));
    }

    public string WriteEndpoint => _writeUri.GetLeftPart(UriPartial.Path);

    internal static string WritePath(InfluxOptions o)
    {
        string E(string s) => Uri.EscapeDataString(s);
        return o.Version switch
        {
            "v2" => $"api/v2/write?org={E(o.Org ?? "")}&bucket={E(o.Bucket ?? o.Database)}&precision=ns",
            "v3" => $"api/v3/write_lp?db={E(o.Database)}&precision=nanosecond",
            _ => $"write?db={E(o.Database)}&precision=ns" + (string.IsNullOrEmpty(o.RetentionPolicy) ? "" : $"&rp={E(o.RetentionPolicy)}"),
        };
    }

    private static AuthenticationHeaderValue? AuthorizationHeader(InfluxOptions o)
    {
        if (o.Version == "v1" && !string.IsNullOrEmpty(o.Username))
            return new AuthenticationHeaderValue("Basic",
                Convert.ToBase64String(Encoding.UTF8.GetBytes($"{o.Username}:{o.Password}")));
        if (!string.IsNullOrEmpty(o.Token))
            return new AuthenticationHeaderValue(o.Version == "v3" ? "Bearer" : "Token", o.Token);
        return null;
    }

    /// <summary>Writes line protocol; never throws for HTTP or network failures, it classifies them.</summary>
    public async Task<WriteResult> WriteAsync(ReadOnlyMemory<byte> lines, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, _writeUri);
        HttpContent content;
        if (_options.Gzip)
        {
            var ms = new MemoryStream(lines.Length / 4 + 64);
            using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
                gz.Write(lines.Span);
            content = new ByteArrayContent(ms.GetBuffer(), 0, (int)ms.Length);
            content.Headers.ContentEncoding.Add("gzip");
        }
        else
        {
            content = new ReadOnlyMemoryContent(lines);
        }
        content.Headers.ContentType = new MediaTypeHeaderValue("text/plain") { CharSet = "utf-8" };
        request.Content = content;
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
            int code = (int)response.StatusCode;
            if (response.IsSuccessStatusCode) return new WriteResult(WriteOutcome.Accepted, code, "");
            var body = await ReadErrorAsync(response, ct).ConfigureAwait(false);
            return response.StatusCode switch
            {
                HttpStatusCode.RequestEntityTooLarge => new WriteResult(WriteOutcome.TooLarge, code, body),
                HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => new WriteResult(WriteOutcome.Unauthorised, code, body),
                HttpStatusCode.TooManyRequests or HttpStatusCode.RequestTimeout =>
                    new WriteResult(WriteOutcome.Retry, code, body, RetryAfter(response)),
                _ when code >= 500 => new WriteResult(WriteOutcome.Retry, code, body, RetryAfter(response)),
                // A missing database (v1 404 "database not found") is retried: it may be being created.
                HttpStatusCode.NotFound when body.Contains("database not found", StringComparison.OrdinalIgnoreCase) =>
                    new WriteResult(WriteOutcome.Retry, code, body),
                _ => new WriteResult(WriteOutcome.Rejected, code, body),
            };
        }
        catch (HttpRequestException e)
        {
            return new WriteResult(WriteOutcome.Retry, 0, e.Message);
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            return new WriteResult(WriteOutcome.Retry, 0, $"no answer within {_http.Timeout.TotalSeconds:F0} s");
        }
    }

    /// <summary>True when the server answers its ping/health endpoint.</summary>
    public async Task<(bool Ok, string Detail)> PingAsync(CancellationToken ct)
    {
        try
        {
            using var response = await _http.GetAsync(_options.Version == "v3" ? "health" : "ping", ct).ConfigureAwait(false);
            return response.IsSuccessStatusCode || response.StatusCode == HttpStatusCode.Unauthorized
                ? (true, $"HTTP {(int)response.StatusCode}")
                : (false, $"HTTP {(int)response.StatusCode}");
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            return (false, e.Message);
        }
    }

    /// <summary>v1: CREATE DATABASE (idempotent). Throws <see cref="HttpRequestException"/> when unreachable.</summary>
    public async Task EnsureDatabaseAsync(CancellationToken ct)
    {
        if (_options.Version != "v1") return;
        using var content = new FormUrlEncodedContent([new("q", $"CREATE DATABASE \"{_options.Database.Replace("\"", "\\\"")}\"")]);
        using var response = await _http.PostAsync("query", content, ct).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"CREATE DATABASE answered HTTP {(int)response.StatusCode}: {await ReadErrorAsync(response, ct)}",
                null, response.StatusCode);
    }

    /// <summary>Runs an InfluxQL query through the 1.x-compatible /query endpoint (v1, and v2 with a DBRP mapping).</summary>
    public async Task<JsonDocument> QueryAsync(string influxQl, string? database = null, CancellationToken ct = default)
    {
        var db = Uri.EscapeDataString(database ?? _options.Database);
        using var response = await _http.GetAsync($"query?db={db}&epoch=ns&q={Uri.EscapeDataString(influxQl)}", ct).ConfigureAwait(false);
        var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"query answered HTTP {(int)response.StatusCode}: {body}", null, response.StatusCode);
        var doc = JsonDocument.Parse(body);
        foreach (var result in doc.RootElement.GetProperty("results").EnumerateArray())
            if (result.TryGetProperty("error", out var err))
                throw new InfluxQueryException(err.GetString() ?? "(no message)");
        return doc;
    }

    private static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        var ra = response.Headers.RetryAfter;
        if (ra?.Delta is { } d) return d;
        if (ra?.Date is { } date) return date - DateTimeOffset.UtcNow;
        return null;
    }

    private static async Task<string> ReadErrorAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        try
        {
            using var doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind == JsonValueKind.Object)
            {
                if (doc.RootElement.TryGetProperty("error", out var e)) return e.GetString() ?? text;
                if (doc.RootElement.TryGetProperty("message", out var m)) return m.GetString() ?? text;
            }
        }
        catch (JsonException)
        {
            // Not JSON (a proxy's HTML page, plain text): the text itself is the message.
            return Excerpt(text);
        }
        return Excerpt(text);
    }

    private static string Excerpt(string text) => text.Length > 1000 ? text[..1000] : text;

    public void Dispose() => _http.Dispose();
}

/// <summary>InfluxDB answered a query with an error of its own (a bad statement, a missing database).</summary>
public sealed class InfluxQueryException(string message) : Exception("InfluxQL error: " + message);
