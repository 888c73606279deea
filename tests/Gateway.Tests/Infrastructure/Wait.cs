using System.Diagnostics;

namespace CityGateway.Tests.Infrastructure;

/// <summary>Waiting on a condition with a deadline, never on a fixed sleep.</summary>
public static class Wait
{
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<string> describe)
    {
        var sw = Stopwatch.StartNew();
        var delay = TimeSpan.FromMilliseconds(20);
        while (true)
        {
            if (await condition()) return;
            if (sw.Elapsed > timeout) throw new TimeoutException($"Timed out after {timeout.TotalSeconds:F0} s: {describe()}");
            await Task.Delay(delay);
            delay = TimeSpan.FromMilliseconds(Math.Min(500, delay.TotalMilliseconds * 1.5));
        }
    }

    public static Task UntilAsync(Func<bool> condition, TimeSpan timeout, Func<string> describe) =>
        UntilAsync(() => Task.FromResult(condition()), timeout, describe);
}
