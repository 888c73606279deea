using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CityGateway.Exchange.Privacy;

/// <summary>One reservation in the ledger: the ε charged to a partner's budget for one release.</summary>
/// <param name="ReleaseId">Identifies the release; reserving the same id again does not charge again.</param>
/// <param name="Partner">The partner city the release goes to.</param>
/// <param name="Period">The budget period, the UTC calendar month of the window: "yyyy-MM".</param>
/// <param name="Epsilon">The ε that was requested.</param>
/// <param name="MicroEpsilon">The ε charged, in integer micro-ε (see <see cref="PrivacyBudgetLedger"/>).</param>
/// <param name="WindowStart">Start of the time window the release covers.</param>
/// <param name="RecordedAt">When the reservation was recorded (UTC).</param>
public sealed record LedgerEntry(
    string ReleaseId, string Partner, string Period, double Epsilon, long MicroEpsilon,
    DateTimeOffset WindowStart, DateTimeOffset RecordedAt)
{
    /// <summary>The charged ε as a number.</summary>
    public double ChargedEpsilon => MicroEpsilon / PrivacyBudgetLedger.MicroPerEpsilon;
}

/// <summary>
/// The privacy budget per partner and period. A data-sharing agreement grants each partner a total
/// ε per period (the UTC calendar month of the released window, keyed "yyyy-MM"); every noisy
/// release is reserved here first and published only if the reservation succeeded.
///
/// <para><b>Arithmetic.</b> Budgets and charges are kept in integer micro-ε so that many small
/// charges never drift past the budget through floating-point rounding. A charge of ε costs
/// ⌈ε·10⁶ − 10⁻³⌉ µε (at least 1): rounded up, except that a value within 10⁻⁹ ε of a micro-ε step —
/// floating-point residue of numbers such as 0.1 — counts as that step. A budget B allows
/// ⌊B·10⁶ + 10⁻³⌋ µε. A reservation is accepted iff spent + charge ≤ budget, so ten reservations of
/// 0.1 exactly exhaust a budget of 1.0.</para>
///
/// <para><b>Idempotence.</b> Release ids are unique across the ledger. Reserving an id that is already
/// recorded (same partner, period and ε) returns true without charging again; reserving it with
/// different parameters is a programming error and throws. Idempotence protects the budget from
/// retried reservations, not from retried noise: a release id stands for one noisy value, and a
/// retry must republish that value rather than draw a new one.</para>
///
/// <para><b>Persistence.</b> The ledger is a JSON file, loaded at construction and rewritten on every
/// accepted reservation before <see cref="TryReserve"/> returns: written to a temporary file in the
/// same directory, flushed to disk (fsync), renamed over the ledger, and the directory synced so the
/// rename itself survives a power loss. A missing file is an empty ledger; an unreadable or
/// inconsistent file is an error at construction (<see cref="InvalidDataException"/> naming the
/// file) and is never reset, since resetting would silently restore spent budget. A lock file
/// (path + ".lock") held for the lifetime of the instance keeps a second process from using the
/// same ledger. If a write fails the reservation is refused by exception; when the failure comes
/// after the rename the charge stays recorded (counting ε that may be unused is the safe side).</para>
///
/// <para>All members are thread-safe.</para>
/// </summary>
public sealed class PrivacyBudgetLedger : IDisposable
{
    public const double MicroPerEpsilon = 1_000_000.0;

    /// <summary>Largest ε accepted for a single reservation or a budget.</summary>
    public const double MaxEpsilon = 1_000_000.0;

    private const int FileVersion = 1;
    private const double MicroTolerance = 1e-3;

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    private readonly object _lock = new();
    private readonly bool _flushToDisk;
    private readonly List<LedgerEntry> _entries = new();
    private readonly Dictionary<string, LedgerEntry> _byRelease = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Partner, string Period), long> _spentMicro = new();
    private readonly FileStream _lockFile;
    private bool _unpersisted;
    private bool _disposed;

    /// <summary>Opens (or starts) the ledger stored at <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">The file exists but is not a valid ledger.</exception>
    /// <exception cref="IOException">Another instance holds the ledger.</exception>
    public PrivacyBudgetLedger(string path) : this(path, flushToDisk: true) { }

    /// <summary>Test hook: <paramref name="flushToDisk"/> false skips the fsyncs (same files, same renames).</summary>
    internal PrivacyBudgetLedger(string path, bool flushToDisk)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        FilePath = Path.GetFullPath(path);
        _flushToDisk = flushToDisk;
        var dir = Path.GetDirectoryName(FilePath)!;
        Directory.CreateDirectory(dir);
        try
        {
            _lockFile = new FileStream(FilePath + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new IOException($"privacy budget ledger {FilePath} is in use by another instance or process", e);
        }
        try
        {
            Load();
        }
        catch
        {
            _lockFile.Dispose();
            throw;
        }
    }

    /// <summary>The ledger file.</summary>
    public string FilePath { get; }

    /// <summary>The budget period of a window: its UTC calendar month, "yyyy-MM".</summary>
    public static string PeriodOf(DateTimeOffset windowStart)
    {
        var utc = windowStart.UtcDateTime;
        return string.Create(CultureInfo.InvariantCulture, $"{utc.Year:D4}-{utc.Month:D2}");
    }

    /// <summary>The charge for ε in micro-ε: ⌈ε·10⁶ − 10⁻³⌉, at least 1.</summary>
    public static long ChargeMicro(double epsilon)
    {
        CheckEpsilon(epsilon, nameof(epsilon), allowZero: false);
        return Math.Max(1L, (long)Math.Ceiling(epsilon * MicroPerEpsilon - MicroTolerance));
    }

    /// <summary>A budget in micro-ε: ⌊budget·10⁶ + 10⁻³⌋.</summary>
    public static long BudgetMicro(double budget)
    {
        CheckEpsilon(budget, nameof(budget), allowZero: true);
        return (long)Math.Floor(budget * MicroPerEpsilon + MicroTolerance);
    }

    /// <summary>
    /// Charges <paramref name="epsilon"/> to <paramref name="partner"/>'s budget for the period of
    /// <paramref name="windowStart"/> if it fits in <paramref name="periodBudget"/>, recording it under
    /// <paramref name="releaseId"/> and persisting it before returning true. Returns false and changes
    /// nothing if it does not fit. An already recorded release id returns true without a new charge.
    /// <paramref name="remaining"/> is the budget left for that partner and period afterwards.
    /// </summary>
    public bool TryReserve(string partner, DateTimeOffset windowStart, double epsilon, double periodBudget,
        string releaseId, out double remaining)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(partner);
        ArgumentException.ThrowIfNullOrWhiteSpace(releaseId);
        long charge = ChargeMicro(epsilon);
        long budget = BudgetMicro(periodBudget);
        var period = PeriodOf(windowStart);
        var key = (partner, period);

        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            long spent = _spentMicro.GetValueOrDefault(key);

            if (_byRelease.TryGetValue(releaseId, out var existing))
            {
                if (existing.Partner != partner || existing.Period != period || existing.MicroEpsilon != charge)
                    throw new ArgumentException(
                        $"release id '{releaseId}' is already reserved for partner '{existing.Partner}', period {existing.Period}, " +
                        $"ε {existing.Epsilon.ToString(CultureInfo.InvariantCulture)}; it cannot be reused for partner '{partner}', " +
                        $"period {period}, ε {epsilon.ToString(CultureInfo.InvariantCulture)}", nameof(releaseId));
                if (_unpersisted)
                {
                    try { Persist(); }
                    catch (LedgerWriteException e)
                    {
                        throw new IOException($"could not write privacy budget ledger {FilePath}; release '{releaseId}' is charged but not yet durable", e.InnerException);
                    }
                }
                remaining = Math.Max(0, budget - spent) / MicroPerEpsilon;
                return true;
            }

            if (spent + charge > budget)
            {
                remaining = Math.Max(0, budget - spent) / MicroPerEpsilon;
                return false;
            }

            var entry = new LedgerEntry(releaseId, partner, period, epsilon, charge, windowStart, DateTimeOffset.UtcNow);
            Add(entry);
            try
            {
                Persist();
            }
            catch (LedgerWriteException e) when (!e.Replaced)
            {
                // The ledger file was not touched: the reservation did not happen.
                Remove(entry);
                throw new IOException($"could not write privacy budget ledger {FilePath}; the reservation was not made", e.InnerException);
            }
            catch (LedgerWriteException e)
            {
                throw new IOException(
                    $"could not sync privacy budget ledger {FilePath}; release '{releaseId}' stays charged but must not be published until a retry succeeds",
                    e.InnerException);
            }
            remaining = (budget - spent - charge) / MicroPerEpsilon;
            return true;
        }
    }

    /// <summary>Whether a reservation under <paramref name="releaseId"/> is recorded: the ε of that release was spent.</summary>
    public bool Contains(string releaseId)
    {
        lock (_lock) return _byRelease.ContainsKey(releaseId);
    }

    /// <summary>The ε charged to <paramref name="partner"/> in <paramref name="period"/> ("yyyy-MM").</summary>
    public double Spent(string partner, string period)
    {
        lock (_lock) return _spentMicro.GetValueOrDefault((partner, period)) / MicroPerEpsilon;
    }

    /// <summary>The budget <paramref name="budget"/> minus what is spent, never below 0.</summary>
    public double Remaining(string partner, string period, double budget)
    {
        long total = BudgetMicro(budget);
        lock (_lock) return Math.Max(0, total - _spentMicro.GetValueOrDefault((partner, period))) / MicroPerEpsilon;
    }

    /// <summary>The recorded reservations in the order they were made, optionally for one partner and/or period.</summary>
    public IReadOnlyList<LedgerEntry> Entries(string? partner = null, string? period = null)
    {
        lock (_lock)
            return _entries.Where(e => (partner is null || e.Partner == partner) && (period is null || e.Period == period)).ToList();
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            _lockFile.Dispose();
        }
    }

    // ---------------------------------------------------------------- state

    private void Add(LedgerEntry entry)
    {
        _entries.Add(entry);
        _byRelease.Add(entry.ReleaseId, entry);
        var key = (entry.Partner, entry.Period);
        _spentMicro[key] = _spentMicro.GetValueOrDefault(key) + entry.MicroEpsilon;
    }

    private void Remove(LedgerEntry entry)
    {
        _entries.RemoveAt(_entries.Count - 1);
        _byRelease.Remove(entry.ReleaseId);
        _spentMicro[(entry.Partner, entry.Period)] -= entry.MicroEpsilon;
    }

    private static void CheckEpsilon(double value, string name, bool allowZero)
    {
        if (!double.IsFinite(value) || value < 0 || (!allowZero && value == 0) || value > MaxEpsilon)
            throw new ArgumentOutOfRangeException(name, value,
                allowZero ? $"a budget must be between 0 and {MaxEpsilon}" : $"ε must be positive and at most {MaxEpsilon}");
    }

    // ---------------------------------------------------------------- file

    private sealed class LedgerFile
    {
        public int Version { get; set; }
        public List<FileEntry>? Entries { get; set; }
    }

    private sealed class FileEntry
    {
        public string? ReleaseId { get; set; }
        public string? Partner { get; set; }
        public string? Period { get; set; }
        public double Epsilon { get; set; }
        public long MicroEpsilon { get; set; }
        public DateTimeOffset WindowStart { get; set; }
        public DateTimeOffset RecordedAt { get; set; }
    }

    private sealed class LedgerWriteException(bool replaced, Exception inner) : Exception(inner.Message, inner)
    {
        public bool Replaced { get; } = replaced;
    }

    private void Load()
    {
        if (!File.Exists(FilePath)) return;
        LedgerFile? file;
        try
        {
            var bytes = File.ReadAllBytes(FilePath);
            file = JsonSerializer.Deserialize<LedgerFile>(bytes, Json);
        }
        catch (JsonException e)
        {
            throw Corrupt($"it is not valid JSON ({e.Message})", e);
        }
        if (file is null) throw Corrupt("it holds no ledger object");
        if (file.Version != FileVersion) throw Corrupt($"unknown format version {file.Version}");
        if (file.Entries is null) throw Corrupt("the entries list is missing");

        for (int i = 0; i < file.Entries.Count; i++)
        {
            var e = file.Entries[i];
            string where = $"entry {i}";
            if (e is null) throw Corrupt($"{where} is null");
            if (string.IsNullOrWhiteSpace(e.ReleaseId)) throw Corrupt($"{where} has no release id");
            if (string.IsNullOrWhiteSpace(e.Partner)) throw Corrupt($"{where} ('{e.ReleaseId}') has no partner");
            if (e.Period != PeriodOf(e.WindowStart))
                throw Corrupt($"{where} ('{e.ReleaseId}') has period '{e.Period}' but its window starts {e.WindowStart:O}");
            if (!double.IsFinite(e.Epsilon) || e.Epsilon <= 0 || e.Epsilon > MaxEpsilon || e.MicroEpsilon != ChargeMicro(e.Epsilon))
                throw Corrupt($"{where} ('{e.ReleaseId}') has an inconsistent charge: ε {e.Epsilon}, {e.MicroEpsilon} µε");
            if (_byRelease.ContainsKey(e.ReleaseId)) throw Corrupt($"release id '{e.ReleaseId}' appears twice");
            Add(new LedgerEntry(e.ReleaseId, e.Partner, e.Period, e.Epsilon, e.MicroEpsilon, e.WindowStart, e.RecordedAt));
        }
    }

    private InvalidDataException Corrupt(string detail, Exception? inner = null) => new(
        $"privacy budget ledger {FilePath} is corrupt: {detail}. Refusing to start: the spent budget cannot be " +
        "known. Restore the file from a backup; it is never reset automatically.", inner);

    /// <summary>Rewrites the whole file atomically; see the type's remarks. Called under the lock.</summary>
    private void Persist()
    {
        var file = new LedgerFile
        {
            Version = FileVersion,
            Entries = _entries.Select(e => new FileEntry
            {
                ReleaseId = e.ReleaseId, Partner = e.Partner, Period = e.Period, Epsilon = e.Epsilon,
                MicroEpsilon = e.MicroEpsilon, WindowStart = e.WindowStart, RecordedAt = e.RecordedAt,
            }).ToList(),
        };
        var bytes = JsonSerializer.SerializeToUtf8Bytes(file, Json);
        var tmp = FilePath + ".tmp";
        try
        {
            // Created 0600 (a stale temporary file is replaced, not reopened with its old mode).
            File.Delete(tmp);
            using (var stream = new FileStream(tmp, PrivateFiles.Options(FileMode.CreateNew)))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: _flushToDisk);
            }
            File.Move(tmp, FilePath, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(tmp); }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
            {
                // The ledger file itself is untouched; the stray temporary file is replaced by the next write.
                e.Data["cleanup"] = cleanup.Message;
            }
            throw new LedgerWriteException(replaced: false, e);
        }
        _unpersisted = true;
        try
        {
            if (_flushToDisk) SyncDirectory(Path.GetDirectoryName(FilePath)!);
        }
        catch (IOException e)
        {
            throw new LedgerWriteException(replaced: true, e);
        }
        _unpersisted = false;
    }

    /// <summary>fsync of the directory, so a completed rename is durable (POSIX; NTFS journals renames itself).</summary>
    private static void SyncDirectory(string directory)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd = DirectorySync.Open(directory, 0 /* O_RDONLY */);
        if (fd < 0) throw new IOException($"cannot open directory {directory} to sync it (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            if (DirectorySync.Fsync(fd) != 0)
                throw new IOException($"fsync of directory {directory} failed (errno {Marshal.GetLastPInvokeError()})");
        }
        finally
        {
            DirectorySync.Close(fd);
        }
    }
}

/// <summary>The libc calls for syncing a directory.</summary>
internal static partial class DirectorySync
{
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    internal static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);
}
