using System.Text.Json.Nodes;
using CityGateway.Exchange;
using CityGateway.Exchange.Signing;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Federation;

/// <summary>What the federation client takes from a partner's document, member by member.</summary>
public sealed class FeedReaderTests
{
    private static readonly DateTimeOffset Now = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private static JsonObject Window(string start, string end) => new() { ["start"] = start, ["end"] = end };

    [Theory]
    [InlineData("2026-06-01T00:00:00Z", "2026-06-01T00:15:00Z")]
    [InlineData("2026-06-01T11:00:00Z", "2026-06-01T12:00:00Z")]
    [InlineData("2026-05-31T00:00:00Z", "2026-06-01T00:00:00Z")]
    [InlineData("2026-06-01T06:00:00+00:00", "2026-06-01T08:00:00+00:00")]
    [InlineData("2000-01-01T00:00:00Z", "2000-01-01T00:30:00Z")]
    [InlineData("2026-06-02T00:00:00Z", "2026-06-02T00:15:00Z")]
    public void A_valid_window_is_taken(string start, string end)
    {
        var (s, e) = FeedReader.Window(Window(start, end), Now);
        Assert.Equal(TimeSpan.Zero, s.Offset);
        Assert.True(e > s);
    }

    [Theory]
    [InlineData("9999-01-01T00:00:00Z", "9999-01-01T00:15:00Z", "outside")]
    [InlineData("1999-12-31T23:45:00Z", "2000-01-01T00:00:00Z", "outside")]
    [InlineData("2026-06-03T00:00:00Z", "2026-06-03T00:15:00Z", "outside")]
    [InlineData("2026-06-02T11:45:00Z", "2026-06-02T12:15:00Z", "future")]
    [InlineData("2026-06-01T00:15:00Z", "2026-06-01T00:15:00Z", "not after")]
    [InlineData("2026-06-01T00:15:00Z", "2026-06-01T00:00:00Z", "not after")]
    [InlineData("2026-06-01T00:00:00Z", "2026-06-01T00:25:00Z", "does not divide a day")]
    [InlineData("2026-06-01T00:00:00Z", "2026-06-01T00:10:00Z", "shorter than")]
    [InlineData("2026-06-01T00:05:00Z", "2026-06-01T00:20:00Z", "not aligned")]
    [InlineData("2026-06-01T00:00:00+02:00", "2026-06-01T00:15:00+02:00", "not a UTC")]
    [InlineData("2026-06-01T00:00:00", "2026-06-01T00:15:00", "not a UTC")]
    [InlineData("2026-06-01", "2026-06-02", "not a UTC")]
    [InlineData("yesterday", "today", "not a UTC")]
    public void A_bad_window_is_refused_naming_the_rule(string start, string end, string rule)
    {
        var e = Assert.Throws<FeedFormatException>(() => FeedReader.Window(Window(start, end), Now));
        Assert.Equal("window", e.Reason);
        Assert.Contains(rule, e.Message);
    }

    [Theory]
    [InlineData("""{"start":1,"end":2}""")]
    [InlineData("""{"start":"2026-06-01T00:00:00Z"}""")]
    [InlineData("""[]""")]
    [InlineData("""null""")]
    public void A_window_of_wrong_types_is_refused(string json)
    {
        var e = Assert.Throws<FeedFormatException>(() => FeedReader.Window(JsonNode.Parse(json), Now));
        Assert.Equal("window", e.Reason);
    }

    [Theory]
    [InlineData("harbour")]
    [InlineData("Altstadt-Süd")]
    [InlineData("zone 3/north")]
    [InlineData("pm2.5_mean:v2")]
    public void A_safe_name_is_taken(string name) => Assert.Equal(name, FeedReader.Name(JsonValue.Create(name), "row.district"));

    [Theory]
    [InlineData("")]
    [InlineData(" leading")]
    [InlineData("a,b")]
    [InlineData("a=b")]
    [InlineData("quote\"d")]
    [InlineData("new\nline")]
    [InlineData("tab\there")]
    [InlineData("back\\slash")]
    public void An_unsafe_name_is_refused(string name)
    {
        var e = Assert.Throws<FeedFormatException>(() => FeedReader.Name(JsonValue.Create(name), "row.district"));
        Assert.Equal("row", e.Reason);
        Assert.Contains("row.district", e.Message);
    }

    [Fact]
    public void Names_are_bounded_in_length()
    {
        Assert.Equal(128, FeedReader.Name(JsonValue.Create(new string('a', 128)), "n").Length);
        Assert.Throws<FeedFormatException>(() => FeedReader.Name(JsonValue.Create(new string('a', 129)), "n"));
        Assert.Throws<FeedFormatException>(() => FeedReader.Name(JsonValue.Create(42), "n"));
        Assert.Throws<FeedFormatException>(() => FeedReader.Name(null, "n"));
    }

    [Fact]
    public void Values_are_finite_numbers()
    {
        Assert.Equal(1.5, FeedReader.FiniteNumber(JsonNode.Parse("1.5"), "v"));
        Assert.Equal("row", Assert.Throws<FeedFormatException>(() => FeedReader.FiniteNumber(JsonNode.Parse("1e999"), "v")).Reason);
        Assert.Throws<FeedFormatException>(() => FeedReader.FiniteNumber(JsonNode.Parse("\"1.5\""), "v"));
        Assert.Throws<FeedFormatException>(() => FeedReader.FiniteNumber(JsonNode.Parse("true"), "v"));
        Assert.Throws<FeedFormatException>(() => FeedReader.FiniteNumber(null, "v"));
    }

    [Theory]
    [InlineData("<html>")]
    [InlineData("[1,2]")]
    [InlineData("\"text\"")]
    [InlineData("")]
    public void A_body_that_is_not_a_JSON_object_is_refused(string body) =>
        Assert.Throws<FeedFormatException>(() => FeedReader.ParseObject(System.Text.Encoding.UTF8.GetBytes(body), "the feed"));

    [Fact]
    public void Logged_partner_text_is_cut_and_has_no_control_characters()
    {
        var shown = FeedReader.Shown("evil\r\nFAKE LOG LINE " + new string('x', 200));
        Assert.DoesNotContain('\n', shown);
        Assert.True(shown.Length <= 65);
    }
}

/// <summary>Where our key may go.</summary>
public sealed class FederationOriginTests
{
    private const string WellKnown = "https://exchange.harbour.example/.well-known/city-exchange";

    [Theory]
    [InlineData("https://exchange.harbour.example/api/exchange/v1", null)]
    [InlineData("https://EXCHANGE.harbour.example:443/api/exchange/v1/", null)]
    [InlineData("https://api.harbour.example/v1", "https://api.harbour.example/v1")]
    [InlineData("https://api.harbour.example/v1/", "https://api.harbour.example/v1")]
    public void The_configured_origin_or_api_base_is_allowed(string apiBase, string? configured) =>
        Assert.NotNull(FederationOrigin.CheckApiBase(apiBase, WellKnown, configured, out _, out _));

    [Theory]
    [InlineData("https://exchange.harbour.example:8443/api", null, "origin")]
    [InlineData("http://exchange.harbour.example/api", null, "origin")]
    [InlineData("https://evil.example/api", null, "origin")]
    [InlineData("https://exchange.harbour.example.evil.example/api", null, "origin")]
    [InlineData("https://user:pw@exchange.harbour.example/api", null, "origin")]
    [InlineData("https://exchange.harbour.example/api?x=1", null, "origin")]
    [InlineData("https://api.harbour.example/other", "https://api.harbour.example/v1", "origin")]
    [InlineData("not a url", null, "origin")]
    [InlineData("ftp://exchange.harbour.example/api", null, "origin")]
    public void Any_other_api_base_is_refused(string apiBase, string? configured, string reason)
    {
        Assert.Null(FederationOrigin.CheckApiBase(apiBase, WellKnown, configured, out var r, out var why));
        Assert.Equal(reason, r);
        Assert.NotNull(why);
    }

    [Fact]
    public void Plain_http_is_refused_at_run_time_unless_loopback()
    {
        Assert.NotNull(FederationOrigin.CheckApiBase("http://127.0.0.1:8080/api", "http://127.0.0.1:8080/.well-known/city-exchange", null, out _, out _));
        Assert.Null(FederationOrigin.CheckApiBase("http://10.1.2.3/api", "https://x.example/wk", "http://10.1.2.3/api", out var reason, out _));
        Assert.Equal("insecure", reason);
    }

    [Theory]
    [InlineData("http://127.0.0.1:8080/x", true)]
    [InlineData("http://127.8.9.10/x", true)]
    [InlineData("http://[::1]:8080/x", true)]
    [InlineData("http://localhost/x", true)]
    [InlineData("http://LOCALHOST:1/x", true)]
    [InlineData("http://10.0.0.1/x", false)]
    [InlineData("http://localhost.evil.example/x", false)]
    [InlineData("http://128.0.0.1/x", false)]
    public void Loopback_is_127_slash_8_ipv6_one_and_localhost(string url, bool loopback) =>
        Assert.Equal(loopback, FederationOrigin.IsLoopback(new Uri(url)));

    [Fact]
    public void Start_up_validation_names_the_key_of_an_insecure_or_unbounded_setting()
    {
        var o = new ExchangeOptions
        {
            CityId = "ourcity",
            Partners =
            [
                new PartnerFeedOptions { Id = "harbour", WellKnownUrl = "http://exchange.harbour.example/.well-known/city-exchange", ApiKey = "k" },
                new PartnerFeedOptions { Id = "local", WellKnownUrl = "http://127.0.0.1:9/.well-known/city-exchange", ApiKey = "k", ApiBase = "http://api.example/v1" },
            ],
            Federation = new FederationOptions { MaxResponseBytes = 10, MaxPagesPerPoll = 0, MaxPollSeconds = 5, RequestTimeoutSeconds = 30, MaxRowsPerRelease = 0 },
        };
        var result = new ExchangeOptionsValidator().Validate(null, o);
        Assert.True(result.Failed);
        var failures = string.Join("\n", result.Failures!);
        Assert.Contains("Gateway:Exchange:Partners:0:WellKnownUrl: 'http://exchange.harbour.example/.well-known/city-exchange' is plain http", failures);
        Assert.DoesNotContain("Partners:1:WellKnownUrl", failures);
        Assert.Contains("Gateway:Exchange:Partners:1:ApiBase", failures);
        Assert.Contains("Gateway:Exchange:Federation:MaxResponseBytes", failures);
        Assert.Contains("Gateway:Exchange:Federation:MaxPagesPerPoll", failures);
        Assert.Contains("Gateway:Exchange:Federation:MaxPollSeconds", failures);
        Assert.Contains("Gateway:Exchange:Federation:MaxRowsPerRelease", failures);

        var defaults = new ExchangeOptions
        {
            CityId = "ourcity",
            Partners = [new PartnerFeedOptions { Id = "harbour", WellKnownUrl = "https://exchange.harbour.example/.well-known/city-exchange", ApiKey = "k" }],
        };
        Assert.True(new ExchangeOptionsValidator().Validate(null, defaults).Succeeded);
        Assert.Equal(4 * 1024 * 1024, defaults.Federation.MaxResponseBytes);
        Assert.Equal((20, 120, 30, 10_000), (defaults.Federation.MaxPagesPerPoll, defaults.Federation.MaxPollSeconds,
            defaults.Federation.RequestTimeoutSeconds, defaults.Federation.MaxRowsPerRelease));
    }
}

/// <summary>The files the client keeps per partner.</summary>
public sealed class FederationStoreTests
{
    [Fact]
    public void A_single_pinned_key_from_before_is_migrated_into_the_trusted_keys()
    {
        using var dir = new TempDir("fedstore");
        using var key = ReleaseSigner.Generate();
        File.WriteAllText(dir.File(PartnerTrustedKeys.LegacyPin), key.PublicKeyPem);
        var keys = PartnerTrustedKeys.Load(dir.Path);
        Assert.Equal(key.KeyId, Assert.Single(keys.Keys).KeyId);
        Assert.True(File.Exists(dir.File(PartnerTrustedKeys.FileName)));
        Assert.False(File.Exists(dir.File(PartnerTrustedKeys.LegacyPin)));
        Assert.Equal(key.KeyId, Assert.Single(PartnerTrustedKeys.Load(dir.Path).Keys).KeyId);
    }

    [Fact]
    public void The_state_keeps_the_last_sequence_and_the_ids_and_takes_over_an_old_cursor()
    {
        using var dir = new TempDir("fedstate");
        File.WriteAllText(dir.File("cursor"), "s41");
        var state = PartnerFeedState.Load(dir.Path);
        Assert.Equal(41, state.LastSequence);
        Assert.Equal("s41", state.Cursor);
        state.Accept(42, "id-42");
        var again = PartnerFeedState.Load(dir.Path);
        Assert.Equal(42, again.LastSequence);
        Assert.True(again.Contains("id-42"));
        Assert.False(File.Exists(dir.File("state.json.tmp")));
    }

    [Fact]
    public void The_trust_command_adds_a_key_or_replaces_them_and_refuses_what_is_not_a_public_key()
    {
        using var dir = new TempDir("fedtrust");
        using var a = ReleaseSigner.Generate();
        using var b = ReleaseSigner.Generate();
        File.WriteAllText(dir.File("a.pem"), a.PublicKeyPem);
        File.WriteAllText(dir.File("b.pem"), b.PublicKeyPem);
        File.WriteAllText(dir.File("private.pem"), a.ExportPkcs8PrivateKeyPem());
        var data = dir.File("exchange");
        (int, string) Run(params string[] args)
        {
            var o = new StringWriter();
            var e = new StringWriter();
            return (ExchangeCommands.Run(args, o, e), o + e.ToString());
        }
        Assert.Equal(0, Run("trust-partner-key", "--partner", "harbour", "--public-key", dir.File("a.pem"), "--data", data).Item1);
        Assert.Equal(0, Run("trust-partner-key", "--partner", "harbour", "--public-key", dir.File("b.pem"), "--data", data).Item1);
        var folder = Path.Combine(data, "federation", "harbour");
        Assert.Equal(2, PartnerTrustedKeys.Load(folder).Keys.Count);
        Assert.Equal(0, Run("trust-partner-key", "--partner", "harbour", "--public-key", dir.File("b.pem"), "--data", data, "--replace").Item1);
        Assert.Equal(b.KeyId, Assert.Single(PartnerTrustedKeys.Load(folder).Keys).KeyId);
        var (code, text) = Run("trust-partner-key", "--partner", "harbour", "--public-key", dir.File("private.pem"), "--data", data);
        Assert.Equal(1, code);
        Assert.Contains("not a P-256", text);
        Assert.Equal(2, Run("trust-partner-key", "--partner", "../etc", "--public-key", dir.File("a.pem"), "--data", data).Item1);
        Assert.Equal(2, Run("trust-partner-key", "--public-key", dir.File("a.pem")).Item1);
    }
}
