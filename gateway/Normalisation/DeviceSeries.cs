using CityGateway.Core;
using CityGateway.Decoding;

namespace CityGateway.Normalisation;

/// <summary>
/// The series of one device's points, one per set of extra tags the device sends (none, or a lane,
/// a vehicle type), so that the tags and their line-protocol text are built once per device rather
/// than once per message. Bounded per device; thread-safe.
/// </summary>
internal sealed class DeviceSeries
{
    private const int MaxTagSets = 256;

    private Series? _plain;
    private Dictionary<KeyValuePair<string, string>[], Series>? _tagged;

    public bool TryGet(KeyValuePair<string, string>[]? extraTags, out Series series)
    {
        if (extraTags is null)
        {
            series = _plain!;
            return series is not null;
        }
        lock (this)
        {
            series = null!;
            return _tagged is not null && _tagged.TryGetValue(extraTags, out series!);
        }
    }

    public Series Add(KeyValuePair<string, string>[]? extraTags, Series series)
    {
        if (extraTags is null) return _plain = series;
        lock (this)
        {
            _tagged ??= new Dictionary<KeyValuePair<string, string>[], Series>(TagSetComparer.Instance);
            if (_tagged.Count >= MaxTagSets) _tagged.Clear();
            _tagged[extraTags] = series;
        }
        return series;
    }
}
