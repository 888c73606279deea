using CityGateway.Exchange.Privacy;

namespace CityGateway.Tests.Exchange;

/// <summary>A reproducible byte stream for replaying noise draws in tests.</summary>
internal sealed class SeededRandomSource(int seed) : IRandomSource
{
    private readonly Random _random = new(seed);

    public long BytesUsed { get; private set; }

    public void Fill(Span<byte> destination)
    {
        _random.NextBytes(destination);
        BytesUsed += destination.Length;
    }
}

/// <summary>A broken source that always returns the same byte.</summary>
internal sealed class ConstantRandomSource(byte value) : IRandomSource
{
    public void Fill(Span<byte> destination) => destination.Fill(value);
}

/// <summary>A source that must not be used (proves that no noise was drawn).</summary>
internal sealed class ForbiddenRandomSource : IRandomSource
{
    public void Fill(Span<byte> destination) => throw new InvalidOperationException("no randomness may be drawn here");
}
