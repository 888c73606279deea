using System.Text;
using CityGateway.Core;
using CityGateway.Decoding;
using CityGateway.Routing;

namespace CityGateway.Tests.Decoding;

/// <summary>
/// Runs a decoder the way the pipeline does: the reading list already holds readings of earlier
/// frames, which a decoder must leave alone, and on error it must keep nothing of its own.
/// </summary>
internal static class DecoderHarness
{
    /// <summary>Receive time used by every test: 2023-11-14T22:13:20Z.</summary>
    public const long ReceivedAtNs = 1_700_000_000_000_000_000;

    private static readonly Reading Sentinel = new() { DeviceId = "earlier-frame", Field = "earlier", Kind = ReadingKind.Number, Number = 1 };

    public static (DecodeError? Error, List<Reading> Readings) Run(IPayloadDecoder decoder, string payload,
        TopicRoute? route = null, string topic = "sensors/unit")
        => Run(decoder, Encoding.UTF8.GetBytes(payload), route, topic);

    public static (DecodeError? Error, List<Reading> Readings) Run(IPayloadDecoder decoder, byte[] payload,
        TopicRoute? route = null, string topic = "sensors/unit")
    {
        route ??= new TopicRoute { Filter = "#", Format = decoder.Format };
        var context = new DecodeContext(route, topic, ReceivedAtNs, new StringPool(1024));
        var readings = new List<Reading> { Sentinel };
        var error = decoder.Decode(payload, context, readings);
        Assert.True(readings.Count >= 1 && readings[0].DeviceId == Sentinel.DeviceId && readings[0].Field == Sentinel.Field,
            "the decoder changed readings that were already in the list");
        if (error is not null)
            Assert.True(readings.Count == 1, $"the decoder returned {error.Reason} but kept {readings.Count - 1} reading(s)");
        return (error, readings.Skip(1).ToList());
    }

    /// <summary>Decodes a payload that must succeed and returns its readings.</summary>
    public static List<Reading> Ok(IPayloadDecoder decoder, string payload, TopicRoute? route = null, string topic = "sensors/unit")
    {
        var (error, readings) = Run(decoder, payload, route, topic);
        Assert.True(error is null, $"unexpected error {error?.Reason}: {error?.Detail}");
        return readings;
    }

    /// <summary>Decodes a payload that must fail and returns the error's reason.</summary>
    public static DecodeError Fails(IPayloadDecoder decoder, string payload, TopicRoute? route = null, string topic = "sensors/unit")
    {
        var (error, _) = Run(decoder, payload, route, topic);
        Assert.NotNull(error);
        return error;
    }

    public static Reading Single(this List<Reading> readings, string field) => Assert.Single(readings, r => r.Field == field);

    /// <summary>Unix ns of a UTC date and time plus a nanosecond fraction, computed independently of the decoders.</summary>
    public static long Ns(int year, int month, int day, int hour, int minute, int second, long fractionNs = 0) =>
        new DateTimeOffset(year, month, day, hour, minute, second, TimeSpan.Zero).ToUnixTimeSeconds() * 1_000_000_000L + fractionNs;
}
