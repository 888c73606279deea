using System.Numerics;
using System.Security.Cryptography;

namespace CityGateway.Exchange.Privacy;

/// <summary>
/// Where the noise samplers get their randomness: uniformly random bytes. The production source is
/// <see cref="CryptoRandomSource"/> (the operating system's CSPRNG via
/// <see cref="RandomNumberGenerator"/>); other implementations exist only so tests can replay a
/// fixed stream.
/// </summary>
internal interface IRandomSource
{
    /// <summary>Fills <paramref name="destination"/> with independent, uniformly random bytes.</summary>
    void Fill(Span<byte> destination);
}

/// <summary>
/// <see cref="RandomNumberGenerator"/> with a small per-thread buffer, so a sample that needs a dozen
/// short draws costs one call into the OS generator instead of twelve. The buffer is never handed out
/// twice: every byte is consumed exactly once.
/// </summary>
internal sealed class CryptoRandomSource : IRandomSource
{
    private const int BufferBytes = 512;

    [ThreadStatic] private static CryptoRandomSource? t_instance;

    private readonly byte[] _buffer = new byte[BufferBytes];
    private int _next = BufferBytes;

    private CryptoRandomSource() { }

    /// <summary>The calling thread's source (the buffer is not shared between threads).</summary>
    public static CryptoRandomSource ForCurrentThread => t_instance ??= new CryptoRandomSource();

    public void Fill(Span<byte> destination)
    {
        if (destination.Length >= BufferBytes)
        {
            RandomNumberGenerator.Fill(destination);
            return;
        }
        while (destination.Length > 0)
        {
            if (_next == BufferBytes)
            {
                RandomNumberGenerator.Fill(_buffer);
                _next = 0;
            }
            int n = Math.Min(destination.Length, BufferBytes - _next);
            _buffer.AsSpan(_next, n).CopyTo(destination);
            _buffer.AsSpan(_next, n).Clear();
            _next += n;
            destination = destination[n..];
        }
    }
}

/// <summary>
/// Exact random draws built from an <see cref="IRandomSource"/>: uniform integers by rejection,
/// Bernoulli(n/d) for rational n/d, and Bernoulli(exp(-n/d)) by the method of Canonne, Kamath and
/// Steinke ("The Discrete Gaussian for Differential Privacy", 2020, algorithm 1). No floating point
/// is involved, so the probabilities are the stated rationals exactly, not their nearest doubles.
/// Every loop that could in principle run forever has a cap whose legitimate probability of being
/// reached is astronomically small; reaching it means the source is broken (for example a stuck
/// source returning only zeros) and raises <see cref="InvalidOperationException"/>.
/// </summary>
internal static class ExactDraws
{
    /// <summary>Rejection attempts for one uniform draw; each attempt succeeds with probability &gt; 1/2.</summary>
    internal const int MaxUniformAttempts = 1_000;

    /// <summary>
    /// Iterations of the Bernoulli(exp(-γ)) series loop for γ ≤ 1: reaching iteration K has
    /// probability γ^K / K! ≤ 1/1000!, i.e. never with a working source.
    /// </summary>
    internal const int MaxSeriesTerms = 1_000;

    /// <summary>A uniform integer in [0, n), n ≥ 1, by drawing just enough bits and rejecting values ≥ n.</summary>
    public static BigInteger Uniform(BigInteger n, IRandomSource source)
    {
        if (n.Sign <= 0) throw new ArgumentOutOfRangeException(nameof(n), "the range must be at least 1");
        if (n.IsOne) return BigInteger.Zero;
        long bits = (n - 1).GetBitLength();
        if (bits <= 63) return Uniform((ulong)n, (int)bits, source);

        int bytes = (int)((bits + 7) / 8);
        int topBits = (int)(bits - 8L * (bytes - 1));
        byte topMask = (byte)((1 << topBits) - 1);
        Span<byte> buffer = bytes <= 64 ? stackalloc byte[bytes] : new byte[bytes];
        for (int attempt = 0; attempt < MaxUniformAttempts; attempt++)
        {
            source.Fill(buffer);
            buffer[^1] &= topMask;   // little-endian: the last byte is the most significant
            var candidate = new BigInteger(buffer, isUnsigned: true, isBigEndian: false);
            if (candidate < n) return candidate;
        }
        throw StuckSource();
    }

    private static ulong Uniform(ulong n, int bits, IRandomSource source)
    {
        ulong mask = bits == 64 ? ulong.MaxValue : (1UL << bits) - 1;
        int bytes = (bits + 7) / 8;
        Span<byte> buffer = stackalloc byte[8];
        for (int attempt = 0; attempt < MaxUniformAttempts; attempt++)
        {
            buffer.Clear();
            source.Fill(buffer[..bytes]);
            ulong candidate = BitConverter.ToUInt64(buffer) & mask;   // little-endian, as on every supported platform
            if (candidate < n) return candidate;
        }
        throw StuckSource();
    }

    /// <summary>True with probability numerator / denominator (0 ≤ numerator ≤ denominator).</summary>
    public static bool Bernoulli(BigInteger numerator, BigInteger denominator, IRandomSource source) =>
        Uniform(denominator, source) < numerator;

    /// <summary>A fair coin.</summary>
    public static bool Coin(IRandomSource source)
    {
        Span<byte> b = stackalloc byte[1];
        source.Fill(b);
        return (b[0] & 1) != 0;
    }

    /// <summary>
    /// True with probability exp(-numerator / denominator), numerator ≥ 0, denominator ≥ 1.
    /// For γ = n/d ≤ 1: draw A_K ~ Bernoulli(γ/K) for K = 1, 2, … until the first failure and answer
    /// "K is odd"; P(K odd) = Σ (−γ)^j / j! = exp(−γ). For γ &gt; 1, exp(−γ) = exp(−1)^⌊γ⌋ · exp(−(γ − ⌊γ⌋)),
    /// so answer true only if ⌊γ⌋ independent Bernoulli(exp(−1)) draws and one Bernoulli(exp(−frac))
    /// draw all succeed. (⌊γ⌋ is bounded by the callers: they only ask for γ ≤ 1 or γ = 1.)
    /// </summary>
    public static bool BernoulliExpMinus(BigInteger numerator, BigInteger denominator, IRandomSource source)
    {
        if (numerator.Sign < 0 || denominator.Sign <= 0) throw new ArgumentOutOfRangeException(nameof(numerator));
        if (numerator > denominator)
        {
            var whole = BigInteger.DivRem(numerator, denominator, out var rest);
            for (BigInteger i = 0; i < whole; i++)
                if (!BernoulliExpMinusAtMostOne(BigInteger.One, BigInteger.One, source)) return false;
            return BernoulliExpMinusAtMostOne(rest, denominator, source);
        }
        return BernoulliExpMinusAtMostOne(numerator, denominator, source);
    }

    private static bool BernoulliExpMinusAtMostOne(BigInteger numerator, BigInteger denominator, IRandomSource source)
    {
        for (int k = 1; k <= MaxSeriesTerms; k++)
        {
            // A_k ~ Bernoulli(γ / k) = Bernoulli(numerator / (denominator · k)).
            if (!Bernoulli(numerator, denominator * k, source)) return (k & 1) == 1;
        }
        throw StuckSource();
    }

    internal static InvalidOperationException StuckSource() =>
        new("the random source produced a sequence with vanishing probability; it is not uniformly random (stuck?)");
}
