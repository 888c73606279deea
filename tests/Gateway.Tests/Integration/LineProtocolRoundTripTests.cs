using CityGateway.Core;
using CityGateway.Storage.Influx;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Integration;

/// <summary>Names and values with the characters line protocol must escape, written to and read back from the real InfluxDB.</summary>
[Collection(ServicesCollection.Name)]
public sealed class LineProtocolRoundTripTests(ServicesFixture services)
{
    public static readonly string[] AwkwardTexts =
    [
        "plain",
        "with space",
        "with,comma",
        "with=equals",
        "a, b=c d",
        "quote\"inside",
        "single'quote",
        @"back\slash",
        @"C:\path\to",
        "Zürich Straße",
        "東京都",
        "emoji 🚦 light",
        "trailing space ",
    ];

    [Fact]
    public async Task Tag_values_and_field_keys_with_special_characters_round_trip()
    {
        var db = ServicesFixture.NewDatabase("lp");
        using var client = services.Influx.Client(db);
        await client.EnsureDatabaseAsync(default);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        long ts = 1_700_000_000_000_000_000;
        for (int i = 0; i < AwkwardTexts.Length; i++)
        {
            var text = AwkwardTexts[i];
            var p = new Point("escape test", [new("site", text), new("device", "dev" + i)], ts + i);
            p.Fields.Add(PointField.Of("value", (double)i));
            p.Fields.Add(PointField.Of("field " + text, (long)i));
            p.Fields.Add(PointField.Of("note", "string \"" + text + "\" \\ end"));
            LineProtocol.Write(buffer, p);
        }
        var result = await client.WriteAsync(buffer.WrittenMemory, default);
        Assert.Equal(WriteOutcome.Accepted, result.Outcome);

        var rows = await services.Influx.RowsAsync(db, "SELECT * FROM \"escape test\"");
        Assert.Equal(AwkwardTexts.Length, rows.Count);
        foreach (var row in rows)
        {
            int i = (int)row["value"].GetDouble();
            var text = AwkwardTexts[i];
            Assert.Equal(text, row["site"].GetString());
            Assert.Equal("dev" + i, row["device"].GetString());
            Assert.True(row.ContainsKey("field " + text), $"field key 'field {text}' missing; columns: {string.Join(" | ", row.Keys)}");
            Assert.Equal(i, row["field " + text].GetInt64());
            Assert.Equal("string \"" + text + "\" \\ end", row["note"].GetString());
        }
    }

    [Fact]
    public async Task Measurement_names_with_comma_and_space_round_trip()
    {
        var db = ServicesFixture.NewDatabase("lpm");
        using var client = services.Influx.Client(db);
        await client.EnsureDatabaseAsync(default);
        var p = new Point("odd, name", [new("device", "d=1")], 1_700_000_000_000_000_000);
        p.Fields.Add(PointField.Of("on", true));
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        LineProtocol.Write(buffer, p);
        Assert.Equal(WriteOutcome.Accepted, (await client.WriteAsync(buffer.WrittenMemory, default)).Outcome);
        var rows = await services.Influx.RowsAsync(db, "SELECT * FROM \"odd, name\"");
        var row = Assert.Single(rows);
        Assert.Equal("d=1", row["device"].GetString());
        Assert.True(row["on"].GetBoolean());
    }
}
