using CityGateway.Decoding.ChirpStack;
using CityGateway.Decoding.Json;
using CityGateway.Decoding.SenML;
using CityGateway.Decoding.Serial;
using CityGateway.Decoding.TheThingsStack;

namespace CityGateway.Decoding;

/// <summary>The payload formats a route can name.</summary>
public sealed class DecoderCatalog
{
    private readonly Dictionary<string, IPayloadDecoder> _decoders;

    public DecoderCatalog()
        : this([new FlatJsonDecoder(), new SenmlDecoder(), new ChirpStackDecoder(), new TtsDecoder(),
            new KeyValueLineDecoder(), new CsvLineDecoder(), new JsonLineDecoder()])
    {
    }

    public DecoderCatalog(IEnumerable<IPayloadDecoder> decoders)
    {
        _decoders = decoders.ToDictionary(d => d.Format, StringComparer.OrdinalIgnoreCase);
    }

    public IReadOnlyCollection<string> Formats => _decoders.Keys;

    public bool Contains(string format) => _decoders.ContainsKey(format);

    public IPayloadDecoder Get(string format) =>
        _decoders.TryGetValue(format, out var d)
            ? d
            : throw new KeyNotFoundException($"unknown payload format '{format}'; known: {string.Join(", ", _decoders.Keys)}");
}
