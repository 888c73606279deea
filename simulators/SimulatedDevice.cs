using System.Security.Cryptography;
using System.Text;

namespace CityGateway.Simulators;

/// <summary>One simulated device: identity, placement, payload format and topic.</summary>
public sealed class SimulatedDevice
{
    private readonly DeviceModel _model;
    private readonly double[] _values;

    internal SimulatedDevice(string id, int index, DeviceTypeSpec type, string format, string district, string site,
        double latitude, double longitude, string? lane, DeviceModel model, Random radio, string topic)
    {
        Id = id;
        Index = index;
        Type = type;
        Format = format;
        District = district;
        Site = site;
        Latitude = latitude;
        Longitude = longitude;
        Lane = lane;
        _model = model;
        Radio = radio;
        DevEui = Identifiers.DevEuiFor(id);
        DevAddr = Identifiers.DevAddrFor(id);
        Topic = topic;
        _values = new double[type.Fields.Count];
    }

    /// <summary>Plain device id: trf-0001, wat-0001, env-0001.</summary>
    public string Id { get; }

    /// <summary>0-based position within its domain.</summary>
    public int Index { get; }

    /// <summary>The id the gateway sees for this device and the key in the registry: the lower-case
    /// DevEUI for ChirpStack devices (deviceInfo.devEui), the plain id for every other format.</summary>
    public string Key => Format == "chirpstack" ? DevEui : Id;

    public string Domain => Type.Domain;

    public DeviceTypeSpec Type { get; }

    public string Format { get; }

    public string District { get; }

    public string Site { get; }

    public double Latitude { get; }

    public double Longitude { get; }

    /// <summary>16 lower-case hex digits derived from <see cref="Id"/>.</summary>
    public string DevEui { get; }

    /// <summary>8 lower-case hex digits derived from <see cref="Id"/>.</summary>
    public string DevAddr { get; }

    /// <summary>Traffic devices: the lane tag sent in flat JSON payloads.</summary>
    public string? Lane { get; }

    public string Topic { get; }

    /// <summary>Messages produced so far; the next message carries Sequence + 1.</summary>
    public long Sequence { get; private set; }

    internal long LastTimestampMs { get; private set; } = long.MinValue;

    /// <summary>Random stream for radio metadata (RSSI, ids), kept apart from the values.</summary>
    internal Random Radio { get; }

    /// <summary>Advances the device by one message at wall time <paramref name="nowMs"/>: returns the
    /// sequence number, the device timestamp (strictly increasing by at least 1 ms) and the values,
    /// rounded to the precision written in the payload. The daily profiles are evaluated at the
    /// timestamp in local time, or at <paramref name="curveTime"/> when given.</summary>
    internal (long Sequence, long TimestampMs, double[] Values) Next(long nowMs, DateTimeOffset? curveTime = null)
    {
        long ts = LastTimestampMs == long.MinValue ? nowMs : Math.Max(nowMs, LastTimestampMs + 1);
        LastTimestampMs = ts;
        Sequence++;
        var local = (curveTime ?? DateTimeOffset.FromUnixTimeMilliseconds(ts)).ToLocalTime().DateTime;
        _model.Sample(local, _values);
        var result = new double[_values.Length];
        for (int i = 0; i < result.Length; i++)
        {
            double v = Math.Round(_values[i], Type.Fields[i].Decimals, MidpointRounding.AwayFromZero);
            result[i] = v == 0 ? 0 : v; // no negative zero in payloads
        }
        return (Sequence, ts, result);
    }

    public override string ToString() => $"{Id} ({Type.Name}, {Format})";
}

/// <summary>Deterministic identifiers and seeds.</summary>
internal static class Identifiers
{
    public static string DevEuiFor(string deviceId) => Hex(Hash("dev-eui:" + deviceId), 8);

    /// <summary>A device address in the range of NetID 0x13 (26xxxxxx), as on The Things Network.</summary>
    public static string DevAddrFor(string deviceId) => "26" + Hex(Hash("dev-addr:" + deviceId), 3);

    public static string JoinEuiFor(string city) => Hex(Hash("join-eui:" + city), 8);

    /// <summary>A stable version-4 style UUID derived from a name.</summary>
    public static Guid GuidFor(string name)
    {
        var bytes = Hash("uuid:" + name)[..16];
        return ToUuid(bytes);
    }

    public static Guid RandomGuid(Random rng)
    {
        var bytes = new byte[16];
        rng.NextBytes(bytes);
        return ToUuid(bytes);
    }

    private static Guid ToUuid(byte[] bytes)
    {
        bytes[7] = (byte)((bytes[7] & 0x0F) | 0x40);
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        return new Guid(bytes);
    }

    /// <summary>A 26-character ULID (as in The Things Stack correlation ids) from a time and random bits.</summary>
    public static string Ulid(long unixMs, Random rng)
    {
        const string alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        Span<char> s = stackalloc char[26];
        long t = unixMs;
        for (int i = 9; i >= 0; i--) { s[i] = alphabet[(int)(t & 31)]; t >>= 5; }
        for (int i = 10; i < 26; i++) s[i] = alphabet[rng.Next(32)];
        return new string(s);
    }

    /// <summary>Mixes the seed with a domain, an index and a purpose into a seed for <see cref="Random"/>.</summary>
    public static int DeviceSeed(int seed, int domain, int index, int purpose)
    {
        ulong x = unchecked((ulong)(uint)seed * 0x9E3779B97F4A7C15UL
                            ^ (ulong)domain << 56 ^ (ulong)purpose << 48 ^ (ulong)(uint)index);
        x = unchecked((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL);
        x = unchecked((x ^ (x >> 27)) * 0x94D049BB133111EBUL);
        x ^= x >> 31;
        return (int)(x & 0x7FFFFFFF);
    }

    private static byte[] Hash(string s) => SHA256.HashData(Encoding.UTF8.GetBytes(s));

    private static string Hex(byte[] bytes, int count) => Convert.ToHexStringLower(bytes, 0, count);
}
