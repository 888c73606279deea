using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using CityGateway.Exchange;
using CityGateway.Exchange.Signing;
using CityGateway.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace CityGateway.Tests.ExchangeIntegration;

/// <summary>
/// A rotation of a city's signing key seen from both sides of a federation: city A releases, rotates
/// its key (stop, rotate-key, start with the new key) and releases again; city B, which pinned A's
/// first key, takes the new key on the strength of the rollover statement and keeps every release,
/// and A's feed serves the old and the new releases, each verifying with its own published key.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class FederatedKeyRotationTests(ServicesFixture services, ITestOutputHelper output)
{
    [Fact]
    public async Task Old_and_new_releases_verify_on_both_sides_after_a_rotation()
    {
        await using var cities = await TwoCities.StartAsync(services.Influx);
        var (a, b) = (cities.A, cities.B);
        await cities.FeedAsync();
        var pulled = b.Gateway.Services.GetRequiredService<FederationState>();

        int before = await a.ReleaseJob.RunOnceAsync(DateTimeOffset.UtcNow.AddMinutes(-50), default);
        Assert.True(before > 0, "no release before the rotation");
        long lastBefore = a.Exchange.Releases.NextSequence(b.Id) - 1;
        await Wait.UntilAsync(() => pulled.Of(a.Id)?.LastSequence == lastBefore, TimeSpan.FromSeconds(60),
            () => $"{b.Id} took #{pulled.Of(a.Id)?.LastSequence} of {a.Id}'s releases, expected #{lastBefore}");
        var oldKeyId = a.Exchange.Signer.KeyId;

        // The rotation, as an operator does it: stop, rotate-key, the key file now holds the new key, start.
        using var newSigner = ReleaseSigner.Generate();
        var keyFile = a.Dir.File("city-key.pem");
        var oldKeyCopy = a.Dir.File("city-key-old.pem");
        var newKeyFile = a.Dir.File("city-key-new.pem");
        File.WriteAllText(newKeyFile, newSigner.ExportPkcs8PrivateKeyPem());
        var rotateOut = new StringWriter();
        var rotateErr = new StringWriter();
        await cities.RestartAsync(a, () =>
        {
            File.Copy(keyFile, oldKeyCopy);
            Assert.Equal(0, ExchangeCommands.Run(["rotate-key", "--current", oldKeyCopy, "--new", newKeyFile, "--data", a.DataPath], rotateOut, rotateErr));
            File.Copy(newKeyFile, keyFile, overwrite: true);
        });
        output.WriteLine(rotateOut.ToString() + rotateErr);
        Assert.Equal(newSigner.KeyId, a.Exchange.Signer.KeyId);

        int after = await a.ReleaseJob.RunOnceAsync(DateTimeOffset.UtcNow, default);
        Assert.True(after > 0, "no release after the rotation");
        long lastAfter = a.Exchange.Releases.NextSequence(b.Id) - 1;
        await Wait.UntilAsync(() => pulled.Of(a.Id)?.LastSequence == lastAfter, TimeSpan.FromSeconds(60),
            () => $"{b.Id} took #{pulled.Of(a.Id)?.LastSequence} of {a.Id}'s releases, expected #{lastAfter}: {pulled.Of(a.Id)?.LastError}");
        Assert.Equal(0, b.Federation.Rejected);

        // B trusts both keys now: the first pinned at first use, the second through the rollover statement.
        var trusted = JsonNode.Parse(File.ReadAllText(Path.Combine(b.DataPath, "federation", a.Id, "trusted-keys.json")))!.ToJsonString();
        Assert.Contains(oldKeyId, trusted);
        Assert.Contains(newSigner.KeyId, trusted);
        // What B stored spans both keys' releases.
        // (accepted values reach InfluxDB through the writer's queue: wait for them)
        var query = $"SELECT max(sequence) AS s, min(sequence) AS f FROM \"partner\" WHERE \"city\" = '{a.Id}'";
        await Wait.UntilAsync(async () => (await services.Influx.RowsAsync(b.Database, query)) is [var row, ..] && (long)row["s"].GetDouble() > lastBefore,
            TimeSpan.FromSeconds(30), () => $"{b.Id} stored nothing from {a.Id}'s releases under the new key");
        var sequences = (await services.Influx.RowsAsync(b.Database, query))[0];
        // (a release whose every cell fell below its noisy threshold has no rows to store)
        Assert.True((long)sequences["s"].GetDouble() > lastBefore, "nothing stored from a release under the new key");
        Assert.True((long)sequences["f"].GetDouble() <= lastBefore, "nothing stored from a release under the old key");

        // A's side: the feed serves every release, each verifying with the published key it names.
        using var http = new HttpClient();
        var wellKnown = JsonNode.Parse(await http.GetStringAsync(a.Url + "/.well-known/city-exchange"))!;
        var keys = wellKnown["keys"]!.AsArray().ToDictionary(k => (string)k!["keyId"]!, k => (string)k!["publicKey"]!);
        Assert.Equal(new[] { oldKeyId, newSigner.KeyId }.Order(StringComparer.Ordinal), keys.Keys.Order(StringComparer.Ordinal));
        using var request = new HttpRequestMessage(HttpMethod.Get, a.Url + "/api/exchange/v1/feed?limit=500");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", a.KeyForPartner);
        using var response = await http.SendAsync(request);
        var feed = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        var releases = feed["releases"]!.AsArray();
        Assert.Equal(lastAfter, releases.Count);
        var signedWith = new Dictionary<string, int>();
        foreach (var r in releases)
        {
            var keyId = (string)r!["signature"]!["keyId"]!;
            Assert.True(SignedDocument.VerifyEnvelope(r.AsObject(), keys[keyId], out var error), error);
            signedWith[keyId] = signedWith.GetValueOrDefault(keyId) + 1;
        }
        Assert.Equal(lastBefore, signedWith[oldKeyId]);
        Assert.Equal(lastAfter - lastBefore, signedWith[newSigner.KeyId]);
        output.WriteLine($"{a.Id}: {lastBefore} releases under {oldKeyId}, {lastAfter - lastBefore} under {newSigner.KeyId}; {b.Id} took all {lastAfter}");
    }
}
