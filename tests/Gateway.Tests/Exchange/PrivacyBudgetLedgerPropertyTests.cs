using CityGateway.Exchange.Privacy;

namespace CityGateway.Tests.Exchange;

public sealed class PrivacyBudgetLedgerPropertyTests
{
    private static readonly string[] Partners = ["lyon", "gent", "porto"];

    private static readonly DateTimeOffset[] Windows =
    [
        new(2026, 10, 31, 23, 45, 0, TimeSpan.Zero),
        new(2026, 11, 1, 0, 30, 0, TimeSpan.FromHours(1)),   // still October in UTC
        new(2026, 11, 14, 8, 15, 0, TimeSpan.Zero),
        new(2026, 12, 3, 17, 0, 0, TimeSpan.FromHours(-3)),
    ];

    private sealed record Accepted(string Partner, string Period, double Epsilon, string Id);

    [Fact]
    public void Random_reservation_sequences_never_overspend_and_spent_is_the_sum_of_accepted()
    {
        // Tens of thousands of atomic rewrites: on a RAM file system where there is one, so the
        // sequence count is not limited by the disk's rename cost.
        using var dir = new ScratchDir();
        const int sequences = 3000;
        int totalAccepted = 0, totalRefused = 0, totalRetries = 0;

        for (int seed = 0; seed < sequences; seed++)
        {
            var random = new Random(seed);
            var path = Path.Combine(dir.Path, $"ledger-{seed}.json");
            // Budgets per partner; sometimes on the 0.05 grid, sometimes arbitrary.
            var budgets = Partners.ToDictionary(p => p, _ => random.Next(2) == 0 ? random.Next(0, 41) * 0.05 : random.NextDouble() * 2);
            var accepted = new List<Accepted>();
            int operations = random.Next(5, 40);

            using (var ledger = new PrivacyBudgetLedger(path, flushToDisk: false))
            {
                for (int op = 0; op < operations; op++)
                {
                    if (accepted.Count > 0 && random.Next(6) == 0)
                    {
                        // Retry an accepted release: true, no new charge.
                        var again = accepted[random.Next(accepted.Count)];
                        var window = Windows.First(w => PrivacyBudgetLedger.PeriodOf(w) == again.Period);
                        double spentBefore = ledger.Spent(again.Partner, again.Period);
                        Assert.True(ledger.TryReserve(again.Partner, window, again.Epsilon, budgets[again.Partner], again.Id, out _));
                        Assert.Equal(spentBefore, ledger.Spent(again.Partner, again.Period));
                        totalRetries++;
                        continue;
                    }

                    var partner = Partners[random.Next(Partners.Length)];
                    var windowStart = Windows[random.Next(Windows.Length)];
                    var period = PrivacyBudgetLedger.PeriodOf(windowStart);
                    double epsilon = random.Next(3) switch
                    {
                        0 => random.Next(1, 11) * 0.05,
                        1 => random.NextDouble() * 0.8 + 1e-9,
                        _ => random.Next(1, 5) * 0.1,
                    };
                    double budget = budgets[partner];
                    double spent = ledger.Spent(partner, period);
                    bool fits = PrivacyBudgetLedger.BudgetMicro(spent) + PrivacyBudgetLedger.ChargeMicro(epsilon)
                                <= PrivacyBudgetLedger.BudgetMicro(budget);

                    bool ok = ledger.TryReserve(partner, windowStart, epsilon, budget, $"{seed}-{op}", out var remaining);

                    // Accepted exactly when it fits in micro-ε (a refusal is never spurious).
                    Assert.Equal(fits, ok);
                    if (ok) { accepted.Add(new Accepted(partner, period, epsilon, $"{seed}-{op}")); totalAccepted++; }
                    else totalRefused++;
                    Assert.Equal(ledger.Remaining(partner, period, budget), remaining);
                    Assert.InRange(remaining, 0, budget + 1e-9);

                    AssertInvariants(ledger, budgets, accepted);
                }
            }

            // Every few sequences, the invariants hold for the file as reloaded.
            if (seed % 10 == 0)
            {
                using var reopened = new PrivacyBudgetLedger(path, flushToDisk: false);
                AssertInvariants(reopened, budgets, accepted);
                Assert.Equal(accepted.Select(a => a.Id), reopened.Entries().Select(e => e.ReleaseId));
            }
            File.Delete(path);
        }

        // The generator exercised both outcomes and retries.
        Assert.True(totalAccepted > 10_000 && totalRefused > 10_000 && totalRetries > 1_000,
            $"accepted {totalAccepted}, refused {totalRefused}, retries {totalRetries}");
    }

    private static void AssertInvariants(PrivacyBudgetLedger ledger, Dictionary<string, double> budgets, List<Accepted> accepted)
    {
        foreach (var partner in Partners)
        foreach (var period in Windows.Select(PrivacyBudgetLedger.PeriodOf).Distinct())
        {
            var mine = accepted.Where(a => a.Partner == partner && a.Period == period).ToList();
            double spent = ledger.Spent(partner, period);

            // Never over the budget, whether counted in charges or in the ε values requested.
            Assert.True(spent <= budgets[partner] + 1e-9, $"{partner} {period}: spent {spent} > budget {budgets[partner]}");
            Assert.True(mine.Sum(a => a.Epsilon) <= budgets[partner] + 1e-9 * (mine.Count + 1));

            // Spent is the sum of the accepted reservations: exactly in micro-ε, and within rounding in ε.
            Assert.Equal(mine.Sum(a => PrivacyBudgetLedger.ChargeMicro(a.Epsilon)), (long)Math.Round(spent * 1e6));
            Assert.Equal(mine.Sum(a => a.Epsilon), spent, 1e-6 * (mine.Count + 1));
            Assert.Equal(mine.Count, ledger.Entries(partner, period).Count);
        }
    }

    private sealed class ScratchDir : IDisposable
    {
        public ScratchDir()
        {
            Path = Directory.Exists("/dev/shm")
                ? Directory.CreateDirectory(System.IO.Path.Combine("/dev/shm", "citygw-ledger-prop-" + Guid.NewGuid().ToString("N"))).FullName
                : Directory.CreateTempSubdirectory("citygw-ledger-prop-").FullName;
        }

        public string Path { get; }

        public void Dispose()
        {
            try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
