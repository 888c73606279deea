using System.Net;
using System.Text.Json.Nodes;
using CityGateway.Exchange.Signing;
using CityGateway.Tests.Infrastructure;
using Xunit.Abstractions;

namespace CityGateway.Tests.ExchangeIntegration;

/// <summary>
/// The city's signing key rotates: stop the gateway, 'exchange rotate-key', point the key setting at
/// the new key, start again. Old releases keep verifying with the old key, new ones with the new key,
/// both published in the well-known document with the rollover statement signed by the old key; the
/// gateway refuses to start with the retired key or a key the history does not know.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class KeyRotationTests(ServicesFixture services, ITestOutputHelper output)
{
    [Fact]
    public async Task After_a_rotation_old_and_new_releases_are_served_and_each_verifies_with_its_own_published_key()
    {
        await using var city = OneCity.Create(services.Influx, ("cityb", "2026-01-01T00:00:00Z", "2030-01-01T00:00:00Z"));
        var oldKey = city.NewKey("key-1");
        var newKey = city.NewKey("key-2");
        var strayKey = city.NewKey("key-3");
        using var oldSigner = ReleaseSigner.FromPemFile(oldKey);
        using var newSigner = ReleaseSigner.FromPemFile(newKey);

        // Before: the gateway records its key as the first entry of the history and releases the older windows.
        await city.StartAsync(oldKey);
        await city.FeedAsync();
        int before = await city.ReleaseJob.RunOnceAsync(DateTimeOffset.UtcNow.AddMinutes(-45), default);
        Assert.True(before > 0, "no release before the rotation");
        // Not while the gateway runs.
        var running = new StringWriter();
        Assert.Equal(1, ExchangeCommands.Run(["rotate-key", "--current", oldKey, "--new", newKey, "--data", city.DataPath], TextWriter.Null, running));
        Assert.Contains("stop it first", running.ToString());
        await city.StopAsync();

        // The rotation, and its usage errors.
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(2, ExchangeCommands.Run(["rotate-key", "--current", oldKey], TextWriter.Null, stderr));
        Assert.Contains("--new", stderr.ToString());
        Assert.Equal(0, ExchangeCommands.Run(["rotate-key", "--help"], stdout, TextWriter.Null));
        Assert.Contains("rotate-key", stdout.ToString());
        Assert.Equal(1, ExchangeCommands.Run(["rotate-key", "--current", strayKey, "--new", newKey, "--data", city.DataPath], TextWriter.Null, stderr = new StringWriter()));
        Assert.Contains("current key is " + oldSigner.KeyId, stderr.ToString());
        stdout = new StringWriter();
        Assert.Equal(0, ExchangeCommands.Run(["rotate-key", "--current", oldKey, "--new", newKey, "--data", city.DataPath], stdout, stderr = new StringWriter()));
        output.WriteLine(stdout.ToString());
        // The history holds public keys only.
        var historyText = File.ReadAllText(Path.Combine(city.DataPath, SigningKeyHistory.FileName));
        Assert.DoesNotContain("PRIVATE KEY", historyText);
        // (read as JSON: the file may escape characters of the base64, such as '+')
        var historyKeys = JsonNode.Parse(historyText)!["keys"]!.AsArray().Select(k => ((string)k!["publicKey"]!).Trim()).ToArray();
        Assert.Contains(newSigner.PublicKeyPem.Trim(), historyKeys);
        // A key is never used twice: going back to the old key is refused.
        Assert.Equal(1, ExchangeCommands.Run(["rotate-key", "--current", newKey, "--new", oldKey, "--data", city.DataPath], TextWriter.Null, stderr = new StringWriter()));
        Assert.Contains("never used again", stderr.ToString());

        // The retired key and a key the history does not know are refused at start-up, naming the setting.
        var retired = await HostilePartnerTests.StartupFailuresOf(city, city.ExchangeArgs(oldKey));
        output.WriteLine(string.Join("\n", retired));
        Assert.Contains(retired, f => f.StartsWith("Gateway:Exchange:Signing:KeyFile: names the retired signing key " + oldSigner.KeyId, StringComparison.Ordinal)
                                      && f.Contains("the current key is " + newSigner.KeyId, StringComparison.Ordinal));
        var unknown = await HostilePartnerTests.StartupFailuresOf(city, city.ExchangeArgs(strayKey));
        Assert.Contains(unknown, f => f.StartsWith("Gateway:Exchange:Signing:KeyFile: names signing key ", StringComparison.Ordinal) && f.Contains("not in the city's key history"));

        // After: the new key signs the remaining windows.
        await city.StartAsync(newKey);
        int after = await city.ReleaseJob.RunOnceAsync(DateTimeOffset.UtcNow, default);
        Assert.True(after > 0, "no release after the rotation");

        using var http = OneCity.ClientFrom("127.0.0.51", city.Keys["cityb"]);
        var wellKnown = JsonNode.Parse(await http.GetStringAsync(city.Url + "/.well-known/city-exchange"))!;
        Assert.Equal(newSigner.KeyId, wellKnown["keyId"]!.GetValue<string>());
        Assert.Equal(newSigner.PublicKeyPem, wellKnown["publicKey"]!.GetValue<string>());
        var keys = wellKnown["keys"]!.AsArray();
        Assert.Equal([oldSigner.KeyId, newSigner.KeyId], keys.Select(k => k!["keyId"]!.GetValue<string>()));
        Assert.Equal(keys[0]!["validUntil"]!.GetValue<string>(), keys[1]!["validFrom"]!.GetValue<string>());
        Assert.Null(keys[1]!["validUntil"]);
        var published = keys.ToDictionary(k => k!["keyId"]!.GetValue<string>(), k => k!["publicKey"]!.GetValue<string>());

        // The rollover statement verifies with the old key and names the new one.
        var rollover = Assert.Single(wellKnown["rollovers"]!.AsArray())!.AsObject();
        Assert.True(SignedDocument.VerifyEnvelope(rollover, published[oldSigner.KeyId], out var rolloverError), rolloverError);
        Assert.False(SignedDocument.VerifyEnvelope(rollover, published[newSigner.KeyId], out _));
        var statement = rollover["payload"]!;
        Assert.Equal("key-rollover", statement["type"]!.GetValue<string>());
        Assert.Equal("citya", statement["city"]!.GetValue<string>());
        Assert.Equal(oldSigner.KeyId, statement["previousKeyId"]!.GetValue<string>());
        Assert.Equal(newSigner.KeyId, statement["newKeyId"]!.GetValue<string>());
        Assert.Equal(newSigner.PublicKeyPem, statement["newPublicKey"]!.GetValue<string>());
        Assert.Equal(keys[1]!["validFrom"]!.GetValue<string>(), statement["validFrom"]!.GetValue<string>());

        // The feed serves releases of both keys; each verifies with the key its signature names.
        using var response = await http.GetAsync(city.Url + "/api/exchange/v1/feed?limit=500");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var releases = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["releases"]!.AsArray();
        Assert.Equal(before + after, releases.Count);
        var byKey = new Dictionary<string, int>();
        foreach (var release in releases)
        {
            var keyId = release!["signature"]!["keyId"]!.GetValue<string>();
            Assert.True(SignedDocument.VerifyEnvelope(release.AsObject(), published[keyId], out var error), error);
            byKey[keyId] = byKey.GetValueOrDefault(keyId) + 1;
        }
        output.WriteLine($"releases by key: {string.Join(", ", byKey.Select(kv => $"{kv.Key} {kv.Value}"))}");
        Assert.Equal(before, byKey.GetValueOrDefault(oldSigner.KeyId));
        Assert.Equal(after, byKey.GetValueOrDefault(newSigner.KeyId));
    }
}
