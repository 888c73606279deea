using System.Text;
using CityGateway.Core;
using CityGateway.Journal;
using CityGateway.Pipeline;
using CityGateway.Quarantine;
using CityGateway.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CityGateway.Tests.Quarantine;

/// <summary>The quarantine file's size bound: rotation, what it removes, and what listing and replay still see.</summary>
public sealed class QuarantineStoreTests : IDisposable
{
    private const long Now = 1_700_000_000_000_000_000;

    private readonly TempDir _dir = new("quarantine");
    private readonly WarningLog _log = new();

    public void Dispose() => _dir.Dispose();

    private string FilePath => _dir.File("quarantine.jsonl");

    private QuarantineStore Store(long maxFileBytes, int maxFiles) =>
        new(Options.Create(new QuarantineOptions { Path = FilePath, MaxFileBytes = maxFileBytes, MaxFiles = maxFiles }), _log);

    private static RawFrame Frame(int i, string payload = "")
    {
        var bytes = Encoding.UTF8.GetBytes(payload.Length > 0 ? payload : $$"""{"device":"env-{{i:D4}}","pm25":{{i}}}""");
        return new RawFrame("mqtt", $"city/json/environment/env-{i:D4}", bytes, Now + i, 1, bytes.Length);
    }

    [Fact]
    public void The_file_rotates_by_size_keeps_max_files_and_counts_what_it_removes()
    {
        using var store = Store(maxFileBytes: 4096, maxFiles: 3);
        for (int i = 0; i < 100; i++) store.Add("unknown_device", $"device 'env-{i:D4}' is not in the device registry", Frame(i), "city/json/#", $"env-{i:D4}");

        Assert.True(File.Exists(FilePath));
        Assert.True(File.Exists(FilePath + ".1"));
        Assert.True(File.Exists(FilePath + ".2"));
        Assert.False(File.Exists(FilePath + ".3"));
        Assert.All(new[] { FilePath, FilePath + ".1", FilePath + ".2" }, f => Assert.InRange(new FileInfo(f).Length, 1, 4096));

        var stored = store.ReadAll().ToList();
        Assert.Equal(100, store.Total);
        Assert.True(store.RemovedByRotation > 0);
        Assert.Equal(100 - store.RemovedByRotation, stored.Count);
        // What remains is the newest entries, oldest first, across the rotated files and the current one.
        Assert.Equal(Enumerable.Range(100 - stored.Count, stored.Count).Select(i => $"env-{i:D4}"), stored.Select(e => e.Device));
        Assert.Contains(_log.Warnings, w => w.Contains("Quarantine rotation removed") && w.Contains("Gateway:Quarantine:MaxFiles"));

        var listing = QuarantineEndpoints.Select(store, null, null, null);
        Assert.Equal(listing.Entries.Count, listing.CountsByReason.Values.Sum());
        Assert.Equal(stored.Count, listing.CountsByReason["unknown_device"]);
        Assert.Equal(100, store.CountsByReason["unknown_device"]);   // since start, rotated-away entries included
    }

    [Fact]
    public void A_store_opened_on_an_existing_file_rotates_at_the_same_size()
    {
        using (var first = Store(maxFileBytes: 4096, maxFiles: 2))
            for (int i = 0; i < 10; i++) first.Add("no_route", "no route", Frame(i));
        long before = new FileInfo(FilePath).Length;
        Assert.InRange(before, 1, 4096);

        using var second = Store(maxFileBytes: 4096, maxFiles: 2);
        int added = 0;
        while (!File.Exists(FilePath + ".1"))
        {
            second.Add("no_route", "no route", Frame(100 + added));
            Assert.InRange(++added, 1, 100);
        }
        Assert.True(new FileInfo(FilePath + ".1").Length <= 4096);
        Assert.Equal(10 + added, second.ReadAll().Count());
        Assert.Equal(0, second.RemovedByRotation);
    }

    [Fact]
    public void Max_files_one_starts_afresh_and_entries_larger_than_a_file_are_kept_whole()
    {
        using var store = Store(maxFileBytes: 1024, maxFiles: 1);
        store.Add("no_route", "no route", Frame(1));
        store.Add("payload_too_large", "large", Frame(2, new string('x', 3000)));
        store.Add("no_route", "no route", Frame(3));

        Assert.False(File.Exists(FilePath + ".1"));
        Assert.Equal([3], store.ReadAll().Select(e => (int)(e.ReceivedAtNs!.Value - Now)));
        Assert.Equal(2, store.RemovedByRotation);
    }

    [Fact]
    public void Rotated_files_are_listed_and_replayed_and_removed_entries_leave_the_replayed_file()
    {
        using var store = Store(maxFileBytes: 4096, maxFiles: 2);
        for (int i = 0; i < 30; i++) store.Add("unknown_device", "unknown", Frame(i), "city/json/#", $"env-{i:D4}");
        Assert.True(File.Exists(FilePath + ".1"));
        var first = store.ReadAll().First();
        Assert.DoesNotContain(File.ReadLines(FilePath), l => l.Contains(first.Id!));   // it is in the rotated file

        var log = new MemoryFrameLog(64);
        var outcome = QuarantineEndpoints.ReplaySelected(new ReplayRequest([first.Id!], null, null), store, log);
        Assert.Equal([first.Id!], outcome.ReplayedIds);
        Assert.Equal(1, log.Stats.Pending);
        Assert.Contains(first.Id!, store.ReplayedIds());

        // Rotate until that entry is removed: its id leaves the .replayed file with it.
        for (int i = 30; store.ReadAll().Any(e => e.Id == first.Id); i++)
        {
            store.Add("unknown_device", "unknown", Frame(i), "city/json/#", $"env-{i:D4}");
            Assert.InRange(i, 30, 300);
        }
        Assert.DoesNotContain(first.Id!, store.ReplayedIds());
    }

    /// <summary>Keeps the warnings a component logs.</summary>
    private sealed class WarningLog : ILogger<QuarantineStore>
    {
        public List<string> Warnings { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel >= LogLevel.Warning) lock (Warnings) Warnings.Add(formatter(state, exception));
        }
    }
}
