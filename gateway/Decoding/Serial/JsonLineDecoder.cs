using CityGateway.Decoding.Json;

namespace CityGateway.Decoding.Serial;

/// <summary>One flat JSON object per line (JSON lines), with the optional *hh checksum after it.</summary>
public sealed class JsonLineDecoder : IPayloadDecoder
{
    private readonly FlatJsonDecoder _json = new();

    public string Format => "jsonl";

    public DecodeError? Decode(ReadOnlySpan<byte> payload, in DecodeContext context, List<Reading> readings)
    {
        if (LineChecksum.Verify(payload, context.Route.Checksum, out var data) is { } bad)
            return new DecodeError(QuarantineReasons.BadChecksum, bad);
        return _json.Decode(data, context, readings);
    }
}
