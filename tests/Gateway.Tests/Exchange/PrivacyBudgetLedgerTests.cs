using CityGateway.Exchange.Privacy;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Tests.Exchange;

public sealed class PrivacyBudgetLedgerTests : IDisposable
{
    private static readonly DateTimeOffset November = new(2026, 11, 14, 8, 15, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset December = new(2026, 12, 3, 17, 0, 0, TimeSpan.Zero);

    private readonly TempDir _dir = new("ledger");

    public void Dispose() => _dir.Dispose();

    private string LedgerPath => _dir.File("budget.json");

    [Fact]
    public void Overspend_is_refused_and_changes_nothing()
    {
        using var ledger = new PrivacyBudgetLedger(LedgerPath);
        Assert.True(ledger.TryReserve("lyon", November, 0.6, 1.0, "r1", out var remaining));
        Assert.Equal(0.4, remaining, 1e-12);
        var before = File.ReadAllBytes(LedgerPath);

        Assert.False(ledger.TryReserve("lyon", November, 0.5, 1.0, "r2", out remaining));
        Assert.Equal(0.4, remaining, 1e-12);
        Assert.Equal(0.6, ledger.Spent("lyon", "2026-11"));
        Assert.Single(ledger.Entries());
        Assert.Equal(before, File.ReadAllBytes(LedgerPath));

        // r2 was not recorded: it can be reserved later with a smaller ε.
        Assert.True(ledger.TryReserve("lyon", November, 0.4, 1.0, "r2", out remaining));
        Assert.Equal(0, remaining);
    }

    [Fact]
    public void The_exact_budget_can_be_spent_in_floating_point_steps()
    {
        using var ledger = new PrivacyBudgetLedger(LedgerPath);
        for (int i = 0; i < 10; i++)
            Assert.True(ledger.TryReserve("lyon", November, 0.1, 1.0, $"w{i}", out _), $"reservation {i}");
        Assert.Equal(1.0, ledger.Spent("lyon", "2026-11"));
        Assert.Equal(0, ledger.Remaining("lyon", "2026-11", 1.0));
        Assert.False(ledger.TryReserve("lyon", November, 1e-6, 1.0, "w10", out _));

        Assert.True(ledger.TryReserve("gent", November, 0.3, 1.0, "g1", out _));
        Assert.True(ledger.TryReserve("gent", November, 0.7, 1.0, "g2", out var remaining));
        Assert.Equal(0, remaining);
        // 0.1 + 0.2 is 0.30000000000000004 in binary; it still counts as 0.3.
        Assert.True(ledger.TryReserve("porto", November, 0.1 + 0.2, 0.3, "p1", out remaining));
        Assert.Equal(0, remaining);
    }

    [Fact]
    public void Charges_round_up_to_the_next_micro_epsilon()
    {
        Assert.Equal(100_000, PrivacyBudgetLedger.ChargeMicro(0.1));
        Assert.Equal(123_457, PrivacyBudgetLedger.ChargeMicro(0.1234561));
        Assert.Equal(1, PrivacyBudgetLedger.ChargeMicro(1e-12));
        Assert.Equal(1_000_000, PrivacyBudgetLedger.BudgetMicro(1.0));
        Assert.Equal(1_234_567, PrivacyBudgetLedger.BudgetMicro(1.2345679));
    }

    [Fact]
    public void Reserving_the_same_release_id_twice_spends_once()
    {
        using var ledger = new PrivacyBudgetLedger(LedgerPath);
        Assert.True(ledger.TryReserve("lyon", November, 0.7, 1.0, "2026-11-14T08:15/traffic", out var first));
        Assert.True(ledger.TryReserve("lyon", November, 0.7, 1.0, "2026-11-14T08:15/traffic", out var second));
        Assert.Equal(0.3, first, 1e-12);
        Assert.Equal(0.3, second, 1e-12);
        Assert.Equal(0.7, ledger.Spent("lyon", "2026-11"));
        Assert.Single(ledger.Entries());

        // The same id with other parameters is a bug in the caller.
        Assert.Throws<ArgumentException>(() => ledger.TryReserve("lyon", November, 0.2, 1.0, "2026-11-14T08:15/traffic", out _));
        Assert.Throws<ArgumentException>(() => ledger.TryReserve("gent", November, 0.7, 1.0, "2026-11-14T08:15/traffic", out _));
        Assert.Equal(0.7, ledger.Spent("lyon", "2026-11"));
    }

    [Fact]
    public void Periods_are_utc_calendar_months_with_separate_budgets()
    {
        Assert.Equal("2026-11", PrivacyBudgetLedger.PeriodOf(new DateTimeOffset(2026, 12, 1, 0, 30, 0, TimeSpan.FromHours(1))));
        Assert.Equal("2026-12", PrivacyBudgetLedger.PeriodOf(new DateTimeOffset(2026, 11, 30, 20, 0, 0, TimeSpan.FromHours(-5))));

        using var ledger = new PrivacyBudgetLedger(LedgerPath);
        Assert.True(ledger.TryReserve("lyon", November, 1.0, 1.0, "n", out _));
        Assert.False(ledger.TryReserve("lyon", November, 0.1, 1.0, "n2", out _));
        Assert.True(ledger.TryReserve("lyon", December, 1.0, 1.0, "d", out _));
        Assert.True(ledger.TryReserve("gent", November, 1.0, 1.0, "g", out _));
        Assert.Equal(["n", "d"], ledger.Entries("lyon").Select(e => e.ReleaseId));
        Assert.Equal(["n", "g"], ledger.Entries(period: "2026-11").Select(e => e.ReleaseId));
    }

    [Fact]
    public void Reservations_survive_a_new_instance()
    {
        using (var ledger = new PrivacyBudgetLedger(LedgerPath))
        {
            Assert.True(ledger.TryReserve("lyon", November, 0.25, 1.0, "a", out _));
            Assert.True(ledger.TryReserve("lyon", November, 0.5, 1.0, "b", out _));
            Assert.True(ledger.TryReserve("gent", December, 0.125, 2.0, "c", out _));
        }
        Assert.False(File.Exists(LedgerPath + ".tmp"));

        using (var reopened = new PrivacyBudgetLedger(LedgerPath))
        {
            Assert.Equal(0.75, reopened.Spent("lyon", "2026-11"));
            Assert.Equal(0.125, reopened.Spent("gent", "2026-12"));
            var entries = reopened.Entries();
            Assert.Equal(["a", "b", "c"], entries.Select(e => e.ReleaseId));
            Assert.Equal(November, entries[0].WindowStart);
            Assert.Equal(250_000, entries[0].MicroEpsilon);

            // Idempotence and the budget carry over.
            Assert.True(reopened.TryReserve("lyon", November, 0.5, 1.0, "b", out var remaining));
            Assert.Equal(0.25, remaining, 1e-12);
            Assert.False(reopened.TryReserve("lyon", November, 0.3, 1.0, "d", out _));
        }
    }

    [Fact]
    public void A_second_instance_on_the_same_file_is_refused()
    {
        using var ledger = new PrivacyBudgetLedger(LedgerPath);
        var e = Assert.Throws<IOException>(() => new PrivacyBudgetLedger(LedgerPath));
        Assert.Contains(LedgerPath, e.Message);
    }

    public static TheoryData<string> CorruptContents() => new()
    {
        "",
        "not json at all",
        "{\"version\": 1, \"entries\": [ {\"releaseId\": \"a\", \"partner\": \"lyon\"",     // cut off mid-write
        "[]",
        "{\"version\": 7, \"entries\": []}",
        "{\"version\": 1}",
        // Charge does not match ε.
        "{\"version\":1,\"entries\":[{\"releaseId\":\"a\",\"partner\":\"lyon\",\"period\":\"2026-11\",\"epsilon\":0.5,\"microEpsilon\":5,\"windowStart\":\"2026-11-14T08:15:00+00:00\",\"recordedAt\":\"2026-11-14T08:20:00+00:00\"}]}",
        // Period does not match the window.
        "{\"version\":1,\"entries\":[{\"releaseId\":\"a\",\"partner\":\"lyon\",\"period\":\"2026-10\",\"epsilon\":0.5,\"microEpsilon\":500000,\"windowStart\":\"2026-11-14T08:15:00+00:00\",\"recordedAt\":\"2026-11-14T08:20:00+00:00\"}]}",
        // The same release twice.
        "{\"version\":1,\"entries\":[" +
        "{\"releaseId\":\"a\",\"partner\":\"lyon\",\"period\":\"2026-11\",\"epsilon\":0.5,\"microEpsilon\":500000,\"windowStart\":\"2026-11-14T08:15:00+00:00\",\"recordedAt\":\"2026-11-14T08:20:00+00:00\"}," +
        "{\"releaseId\":\"a\",\"partner\":\"lyon\",\"period\":\"2026-11\",\"epsilon\":0.5,\"microEpsilon\":500000,\"windowStart\":\"2026-11-14T08:15:00+00:00\",\"recordedAt\":\"2026-11-14T08:20:00+00:00\"}]}",
    };

    [Theory]
    [MemberData(nameof(CorruptContents))]
    public void A_corrupted_file_is_refused_at_construction_and_left_as_it_is(string contents)
    {
        File.WriteAllText(LedgerPath, contents);

        var e = Assert.Throws<InvalidDataException>(() => new PrivacyBudgetLedger(LedgerPath));
        Assert.Contains(LedgerPath, e.Message);
        Assert.Contains("corrupt", e.Message);
        Assert.Equal(contents, File.ReadAllText(LedgerPath));

        // The refused instance released its lock: after a repair the ledger opens.
        File.Delete(LedgerPath);
        using var repaired = new PrivacyBudgetLedger(LedgerPath);
        Assert.Empty(repaired.Entries());
    }

    [Fact]
    public void Concurrent_reservations_never_exceed_the_budget()
    {
        const int threads = 8, perThread = 40;
        using (var ledger = new PrivacyBudgetLedger(LedgerPath))
        {
            int accepted = 0;
            var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
            using var start = new Barrier(threads);
            var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
            {
                try
                {
                    start.SignalAndWait();
                    for (int i = 0; i < perThread; i++)
                    {
                        // 0.03 × 33 = 0.99 fits in 1.0; the 34th does not.
                        if (ledger.TryReserve("lyon", November, 0.03, 1.0, $"t{t}-{i}", out var remaining))
                        {
                            Interlocked.Increment(ref accepted);
                            Assert.True(remaining >= 0);
                        }
                        // A retry of an id another thread may have reserved must not spend again.
                        ledger.TryReserve("lyon", November, 0.03, 1.0, $"t{(t + 1) % threads}-{i / 2}", out _);
                        Assert.True(ledger.Spent("lyon", "2026-11") <= 1.0);
                    }
                }
                catch (Exception e)
                {
                    failures.Enqueue(e);
                }
            })).ToList();
            workers.ForEach(w => w.Start());
            workers.ForEach(w => w.Join());

            Assert.Empty(failures);
            Assert.Equal(33, accepted);
            Assert.Equal(0.99, ledger.Spent("lyon", "2026-11"), 1e-12);
            Assert.Equal(33, ledger.Entries().Count);
        }
        using var reopened = new PrivacyBudgetLedger(LedgerPath);
        Assert.Equal(0.99, reopened.Spent("lyon", "2026-11"), 1e-12);
        Assert.Equal(33, reopened.Entries().Count);
    }

    [Theory]
    [InlineData(0.0, 1.0)]
    [InlineData(-0.1, 1.0)]
    [InlineData(double.NaN, 1.0)]
    [InlineData(double.PositiveInfinity, 1.0)]
    [InlineData(0.1, -1.0)]
    [InlineData(0.1, double.NaN)]
    public void Invalid_amounts_are_refused(double epsilon, double budget)
    {
        using var ledger = new PrivacyBudgetLedger(LedgerPath);
        Assert.Throws<ArgumentOutOfRangeException>(() => ledger.TryReserve("lyon", November, epsilon, budget, "x", out _));
        Assert.Empty(ledger.Entries());
    }
}
