using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using CityGateway.Tests.Infrastructure;
using Microsoft.Extensions.Options;
using Xunit.Abstractions;

namespace CityGateway.Tests.ExchangeIntegration;

/// <summary>
/// The partner API and the operator API against a hostile client, over HTTP against the running
/// gateway: key guessing is throttled per client address without locking the real partner out,
/// the well-known document ignores the Host header, agreements out of their validity are refused,
/// the operator key is checked before a body is read, and the exchange's files are the owner's only.
/// Client addresses are told apart by binding the client to different loopback addresses (127.x.y.z).
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class HostilePartnerTests(ServicesFixture services, ITestOutputHelper output)
{
    private static readonly (string, string, string)[] ValidAgreements =
        [("cityb", "2026-01-01T00:00:00Z", "2030-01-01T00:00:00Z"), ("cityc", "2026-01-01T00:00:00Z", "2030-01-01T00:00:00Z")];

    private static string WrongSecretFor(string key) => key[..key.LastIndexOf('.')] + "." + new string('A', 43);

    [Fact]
    public async Task Wrong_secrets_for_a_partners_key_id_do_not_lock_the_partner_out_and_failed_authentications_are_throttled_per_address()
    {
        await using var city = OneCity.Create(services.Influx, ValidAgreements);
        await city.StartAsync(city.NewKey("city-key"));
        var feed = city.Url + "/api/exchange/v1/feed";

        // 100 requests with cityb's key id and a wrong secret, from one address.
        int unauthorized = 0, throttled = 0;
        using (var attacker = OneCity.ClientFrom("127.0.0.11", WrongSecretFor(city.Keys["cityb"])))
        {
            for (int i = 0; i < 100; i++)
            {
                using var r = await attacker.GetAsync(feed);
                if (r.StatusCode == HttpStatusCode.Unauthorized) unauthorized++;
                else if (r.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    throttled++;
                    Assert.True(r.Headers.RetryAfter?.Delta > TimeSpan.Zero, "429 carries Retry-After");
                    Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
                }
                else Assert.Fail($"attempt {i + 1}: {(int)r.StatusCode}");
            }
        }
        output.WriteLine($"100 wrong secrets for cityb's key id: {unauthorized} × 401, {throttled} × 429");
        Assert.Equal(10, unauthorized);
        Assert.Equal(90, throttled);
        // The real partner, from its own address, still reads its feed, with its whole budget.
        using (var partner = OneCity.ClientFrom("127.0.0.12", city.Keys["cityb"]))
            for (int i = 0; i < 5; i++) Assert.Equal(HttpStatusCode.OK, (await partner.GetAsync(feed)).StatusCode);

        // 11 wrong keys from one address: ten 401, then 429 ...
        var statuses = new List<HttpStatusCode>();
        using (var guesser = OneCity.ClientFrom("127.0.0.13"))
        {
            for (int i = 0; i < 11; i++)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, feed);
                request.Headers.Authorization = new("Bearer", $"cgx.{i:D12}.{new string('B', 43)}");
                statuses.Add((await guesser.SendAsync(request)).StatusCode);
            }
            Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.Unauthorized, 10), HttpStatusCode.TooManyRequests], statuses);
            // ... and the 12th attempt from that address is throttled even with a right key: the key
            // is not checked at all while the address is throttled (so a throttled guesser learns nothing).
            using var right = new HttpRequestMessage(HttpMethod.Get, feed);
            right.Headers.Authorization = new("Bearer", city.Keys["cityb"]);
            Assert.Equal(HttpStatusCode.TooManyRequests, (await guesser.SendAsync(right)).StatusCode);
        }
        // Another partner, and the attacked partner, from their own addresses: unaffected.
        using (var other = OneCity.ClientFrom("127.0.0.14", city.Keys["cityc"])) Assert.Equal(HttpStatusCode.OK, (await other.GetAsync(feed)).StatusCode);
        using (var partner = OneCity.ClientFrom("127.0.0.12", city.Keys["cityb"])) Assert.Equal(HttpStatusCode.OK, (await partner.GetAsync(feed)).StatusCode);
    }

    [Fact]
    public async Task The_well_known_api_base_is_the_configured_public_url_whatever_the_Host_header_says()
    {
        await using var city = OneCity.Create(services.Influx, ValidAgreements);
        await city.StartAsync(city.NewKey("city-key"));
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, city.Url + "/.well-known/city-exchange");
        request.Headers.Host = "evil.example";
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var doc = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal(OneCity.PublicBaseUrl + "/api/exchange/v1", doc["apiBase"]!.GetValue<string>());
        Assert.Equal(OneCity.PublicBaseUrl + "/api/exchange/v1/openapi.json", doc["openapi"]!.GetValue<string>());
        Assert.DoesNotContain("evil.example", doc.ToJsonString());
    }

    [Theory]
    [InlineData(null, "Gateway:Exchange:PublicBaseUrl: required")]
    [InlineData("exchange.citya.example", "Gateway:Exchange:PublicBaseUrl: 'exchange.citya.example' is not an absolute http(s) URL")]
    [InlineData("ftp://exchange.citya.example", "Gateway:Exchange:PublicBaseUrl: 'ftp://exchange.citya.example' is not an absolute http(s) URL")]
    public async Task A_publisher_without_an_absolute_http_public_base_url_does_not_start(string? url, string expected)
    {
        await using var city = OneCity.Create(services.Influx, ValidAgreements);
        var args = city.ExchangeArgs(city.NewKey("city-key")).Where(a => !a.StartsWith("--Gateway:Exchange:PublicBaseUrl=", StringComparison.Ordinal)).ToList();
        if (url is not null) args.Add("--Gateway:Exchange:PublicBaseUrl=" + url);
        var failures = await StartupFailures(city, [.. args]);
        Assert.Contains(failures, f => f.StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Expired_and_not_yet_valid_agreements_are_refused_with_the_reason()
    {
        await using var city = OneCity.Create(services.Influx,
            ("cityb", "2026-01-01T00:00:00Z", "2030-01-01T00:00:00Z"),
            ("cityd", "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z"),
            ("citye", "2099-01-01T00:00:00Z", "2100-01-01T00:00:00Z"));
        await city.StartAsync(city.NewKey("city-key"));
        var cases = new[]
        {
            ("cityd", "Agreement expired", "valid from 2020-01-01T00:00:00Z until 2021-01-01T00:00:00Z; expired."),
            ("citye", "Agreement not yet valid", "valid from 2099-01-01T00:00:00Z until 2100-01-01T00:00:00Z; not yet valid."),
        };
        foreach (var (partner, title, reason) in cases)
        {
            using var http = OneCity.ClientFrom("127.0.0.21", city.Keys[partner]);
            foreach (var path in new[] { "/api/exchange/v1/feed", "/api/exchange/v1/agreement" })
            {
                using var response = await http.GetAsync(city.Url + path);
                var body = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"{partner} {path}: {(int)response.StatusCode} {body}");
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                var problem = JsonNode.Parse(body)!;
                Assert.Equal(title, problem["title"]!.GetValue<string>());
                Assert.Contains(reason, problem["detail"]!.GetValue<string>());
                output.WriteLine($"{partner} {path}: {problem["detail"]}");
            }
        }
        // A refusal for validity is not a failed authentication: the address is not throttled.
        using (var http = OneCity.ClientFrom("127.0.0.21", city.Keys["cityb"]))
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(city.Url + "/api/exchange/v1/feed")).StatusCode);
    }

    [Fact]
    public async Task The_exchange_files_are_readable_by_the_gateway_user_only()
    {
        if (OperatingSystem.IsWindows()) return;
        await using var city = OneCity.Create(services.Influx, ValidAgreements);
        var key = city.NewKey("city-key");
        await city.StartAsync(key);
        await city.FeedAsync();
        Assert.True(await city.ReleaseJob.RunOnceAsync(DateTimeOffset.UtcNow, default) > 0);
        using (var http = OneCity.ClientFrom("127.0.0.31", city.Keys["cityb"]))
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(city.Url + "/api/exchange/v1/feed")).StatusCode);

        const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        var expected = new Dictionary<string, UnixFileMode>
        {
            [key] = OwnerReadWrite,
            [Path.Combine(city.DataPath, "partner-keys.json")] = OwnerReadWrite,
            [Path.Combine(city.DataPath, "audit.jsonl")] = OwnerReadWrite,
            [Path.Combine(city.DataPath, "budget-ledger.json")] = OwnerReadWrite,
            [Path.Combine(city.DataPath, "signing-keys.json")] = OwnerReadWrite,
            [city.DataPath] = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute,
        };
        var releases = Directory.GetFiles(Path.Combine(city.DataPath, "releases"), "*.json", SearchOption.AllDirectories);
        Assert.NotEmpty(releases);
        // Releases are created 0600 and then made read-only: they are never rewritten.
        foreach (var r in releases) expected[r] = UnixFileMode.UserRead;
        foreach (var (path, mode) in expected)
        {
            var actual = File.GetUnixFileMode(path);
            output.WriteLine($"{Convert.ToString((int)actual, 8),4} {Path.GetFileName(path)}");
            Assert.True(mode == actual, $"{path}: mode {Convert.ToString((int)actual, 8)}, expected {Convert.ToString((int)mode, 8)}");
        }
    }

    [Fact]
    public async Task The_operator_key_is_checked_before_the_body_is_read_bodies_are_bounded_and_failures_are_throttled()
    {
        await using var city = OneCity.Create(services.Influx, ValidAgreements);
        await city.StartAsync(city.NewKey("city-key"));
        var gateway = city.Gateway!;
        var port = new Uri(gateway.OperatorUrl).Port;
        const long Huge = 100L * 1024 * 1024;

        // Headers announcing 100 MB and no body sent: the answer comes without the body, so it was not read.
        var wrong = await HeadersOnly("127.0.0.41", port, "POST", "/api/quarantine/replay", "wrong-key", Huge);
        Assert.Equal(401, wrong.Status);
        var tooLarge = await HeadersOnly("127.0.0.42", port, "POST", "/api/quarantine/replay", OneCity.OperatorKey, Huge);
        Assert.Equal(413, tooLarge.Status);
        output.WriteLine($"wrong key, 100 MB announced: {wrong.Head.Split('\r')[0]}; right key: {tooLarge.Head.Split('\r')[0]}");

        // A chunked body (no length announced) is cut at the bound as well.
        using (var http = OneCity.ClientFrom("127.0.0.42", OneCity.OperatorKey))
        {
            var counting = new CountingStream(Huge);
            using var content = new StreamContent(counting);
            content.Headers.ContentType = new("application/json");
            using var request = new HttpRequestMessage(HttpMethod.Post, gateway.OperatorUrl + "/api/quarantine/replay") { Content = content };
            request.Headers.TransferEncodingChunked = true;
            int status;
            try { status = (int)(await http.SendAsync(request)).StatusCode; }
            catch (HttpRequestException) { status = -1; } // the server may close the connection while the body is still being sent
            output.WriteLine($"chunked body: status {status} after {counting.Sent} bytes were sent");
            Assert.True(status is 413 or -1, $"status {status}");
            Assert.True(counting.Sent < 64L * 1024 * 1024, $"{counting.Sent} bytes were taken of a body that is refused past 1 MiB");
        }
        // A right key and a small body works.
        using (var http = OneCity.ClientFrom("127.0.0.42", OneCity.OperatorKey))
        {
            using var response = await http.PostAsync(gateway.OperatorUrl + "/api/quarantine/replay", new StringContent("{\"reason\":\"unknown_device\"}", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // Many wrong keys from one address: 429 after ten, and then even for the right key; other addresses are unaffected.
        var statuses = new List<int>();
        using (var guesser = OneCity.ClientFrom("127.0.0.43"))
        {
            for (int i = 0; i < 15; i++)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, gateway.OperatorUrl + "/api/quarantine");
                request.Headers.Add("X-Api-Key", "guess-" + i);
                statuses.Add((int)(await guesser.SendAsync(request)).StatusCode);
            }
            Assert.Equal([.. Enumerable.Repeat(401, 10), .. Enumerable.Repeat(429, 5)], statuses);
            using var right = new HttpRequestMessage(HttpMethod.Get, gateway.OperatorUrl + "/api/quarantine");
            right.Headers.Add("X-Api-Key", OneCity.OperatorKey);
            using var throttled = await guesser.SendAsync(right);
            Assert.Equal(HttpStatusCode.TooManyRequests, throttled.StatusCode);
            Assert.True(throttled.Headers.RetryAfter?.Delta > TimeSpan.Zero);
        }
        // A wrong key with a huge body from the throttled address: 429 at once, body unread.
        Assert.Equal(429, (await HeadersOnly("127.0.0.43", port, "POST", "/api/quarantine/replay", "guess", Huge)).Status);
        using (var operatorClient = OneCity.ClientFrom("127.0.0.44", OneCity.OperatorKey))
            Assert.Equal(HttpStatusCode.OK, (await operatorClient.GetAsync(gateway.OperatorUrl + "/api/quarantine")).StatusCode);
        // The operator API is not on the partner listener at all.
        using (var http = OneCity.ClientFrom("127.0.0.44", OneCity.OperatorKey))
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(city.Url + "/api/quarantine")).StatusCode);
    }

    /// <summary>Sends a request's headers (announcing <paramref name="contentLength"/> bytes) but no body, and reads the response head.</summary>
    private static async Task<(int Status, string Head)> HeadersOnly(string from, int port, string method, string path, string key, long contentLength)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Parse(from), 0));
        await socket.ConnectAsync(IPAddress.Loopback, port);
        using var stream = new NetworkStream(socket, ownsSocket: false);
        var head = $"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n" +
                   $"Content-Type: application/json\r\nContent-Length: {contentLength}\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        var received = new MemoryStream();
        var buffer = new byte[4096];
        while (!Encoding.ASCII.GetString(received.ToArray()).Contains("\r\n\r\n", StringComparison.Ordinal))
        {
            int n = await stream.ReadAsync(buffer, timeout.Token);
            if (n == 0) break;
            received.Write(buffer, 0, n);
        }
        var text = Encoding.ASCII.GetString(received.ToArray());
        Assert.StartsWith("HTTP/1.1 ", text);
        return (int.Parse(text.AsSpan(9, 3), System.Globalization.CultureInfo.InvariantCulture), text);
    }

    private static async Task<List<string>> StartupFailures(OneCity city, string[] exchangeArgs)
    {
        string[] args =
        [
            "--Gateway:Operations:Listen=http://127.0.0.1:" + ServiceProcess.FreePort(),
            "--Gateway:Registry:Path=" + city.Fleet.RegistryPath,
            "--Gateway:Journal:Path=" + city.Dir.File("journal-" + Guid.NewGuid().ToString("N")[..6]),
            "--Gateway:Quarantine:Path=" + city.Dir.File("quarantine.jsonl"),
            .. exchangeArgs,
        ];
        await using var app = GatewayApp.Build(args);
        var e = Assert.Throws<OptionsValidationException>(() => GatewayApp.ValidateConfiguration(app.Services));
        return e.Failures.ToList();
    }

    internal static Task<List<string>> StartupFailuresOf(OneCity city, string[] exchangeArgs) => StartupFailures(city, exchangeArgs);

    /// <summary>A body of <c>length</c> bytes made on demand, counting what the client actually sent.</summary>
    private sealed class CountingStream(long length) : Stream
    {
        private long _sent;
        public long Sent => Interlocked.Read(ref _sent);
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Sent; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count)
        {
            int n = (int)Math.Min(count, length - Sent);
            buffer.AsSpan(offset, n).Fill((byte)' ');
            Interlocked.Add(ref _sent, n);
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
