using CityGateway.Core;
using CityGateway.Routing;

namespace CityGateway.Decoding;

/// <summary>
/// Turns one payload into readings. Implementations are pure and thread-safe: the same bytes and
/// context always give the same readings or the same error.
/// </summary>
public interface IPayloadDecoder
{
    /// <summary>The format name used in route configuration.</summary>
    string Format { get; }

    /// <summary>Appends the payload's readings to <paramref name="readings"/>; returns an error when the
    /// payload as a whole cannot be decoded (then nothing must be kept from it).</summary>
    DecodeError? Decode(ReadOnlySpan<byte> payload, in DecodeContext context, List<Reading> readings);
}

/// <summary>Why a payload could not be decoded. <see cref="Reason"/> is a stable quarantine reason.</summary>
public sealed record DecodeError(string Reason, string Detail);

public readonly struct DecodeContext
{
    public DecodeContext(TopicRoute route, string topic, long receivedAtNs, StringPool names)
    {
        Names = names;
        Route = route;
        Topic = topic;
        ReceivedAtNs = receivedAtNs;
    }

    public TopicRoute Route { get; }
    public string Topic { get; }
    public long ReceivedAtNs { get; }

    /// <summary>The strings of names and ids that repeat message after message (the process's pool).</summary>
    public StringPool Names { get; }

    /// <summary>Device id from the topic template ({device}), if the route has one.</summary>
    public string? TopicDevice =>
        Topics.TryGetLevel(Route.Topic, Topic, "device", out var level) ? Names.Get(level) : null;

    /// <summary>
    /// Where the route's template names the device ({device}), the topic's device wins: a payload
    /// that names another device is refused (<see cref="QuarantineReasons.DeviceMismatch"/>), so a
    /// device allowed by the broker to publish on its own topic only cannot speak for another.
    /// Null when the payload names no device, the route has no {device} level, the topic's level is
    /// empty, or both agree.
    /// </summary>
    public DecodeError? TopicDeviceConflict(string? payloadDevice, StringComparison comparison = StringComparison.Ordinal)
    {
        if (string.IsNullOrEmpty(payloadDevice) || !Topics.TryGetLevel(Route.Topic, Topic, "device", out var level)) return null;
        if (level.IsEmpty || level.Equals(payloadDevice, comparison)) return null;
        return new DecodeError(QuarantineReasons.DeviceMismatch,
            $"the topic names device '{Timestamps.Truncate(level.ToString())}' but the payload names '{Timestamps.Truncate(payloadDevice)}'; a device publishes only for itself (route {Route.Topic})");
    }
}

public static class QuarantineReasons
{
    public const string MalformedPayload = "malformed_payload";
    public const string InvalidUtf8 = "invalid_utf8";
    public const string PayloadTooLarge = "payload_too_large";
    public const string NoRoute = "no_route";
    public const string MissingDeviceId = "missing_device_id";
    public const string MissingDecodedPayload = "missing_decoded_payload";
    public const string UnknownDevice = "unknown_device";
    public const string UnknownField = "unknown_field";
    public const string UnknownUnit = "unknown_unit";
    public const string WrongType = "wrong_type";
    public const string NonFinite = "non_finite";
    public const string OutOfBounds = "out_of_bounds";
    public const string ClockSkew = "clock_skew";
    public const string DeviceMismatch = "device_mismatch";
    public const string BadTimestamp = "bad_timestamp";
    public const string Unsupported = "unsupported_value";
    public const string RejectedByInflux = "rejected_by_influx";
    public const string ProcessingError = "processing_error";
    public const string JournalExpired = "journal_expired";
    public const string BadChecksum = "bad_checksum";
    public const string LineTooLong = "line_too_long";
}
