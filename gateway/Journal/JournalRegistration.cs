using CityGateway.Core;
using Microsoft.Extensions.Options;

namespace CityGateway.Journal;

public static class JournalRegistration
{
    /// <summary>The journal (section Gateway:Journal): every frame on disk before anything else happens.</summary>
    public static IServiceCollection AddJournal(this IServiceCollection services, IConfigurationSection gateway)
    {
        services.AddOptions<JournalOptions>().Bind(gateway.GetSection("Journal")).ValidateOnStart();
        services.AddSingleton<IValidateOptions<JournalOptions>, JournalOptionsValidator>();
        services.AddSingleton<IFrameLog>(sp =>
        {
            var o = sp.GetRequiredService<IOptions<JournalOptions>>().Value;
            return o.Enabled
                ? new FileJournal(o, sp.GetRequiredService<ILoggerFactory>().CreateLogger<FileJournal>(), sp.GetRequiredService<StringPool>())
                : new MemoryFrameLog(o.MemoryQueueCapacity);
        });
        return services;
    }
}

// Each validator names the configuration key at fault, so a wrong setting fails at start-up
// with a message an operator can act on.

internal sealed class JournalOptionsValidator : IValidateOptions<JournalOptions>
{
    public ValidateOptionsResult Validate(string? name, JournalOptions o)
    {
        var errors = new List<string>();
        if (o.Enabled)
        {
            if (string.IsNullOrWhiteSpace(o.Path)) errors.Add("Gateway:Journal:Path: missing");
            else
            {
                try
                {
                    Directory.CreateDirectory(o.Path);
                    var probe = System.IO.Path.Combine(o.Path, ".write-probe");
                    File.WriteAllText(probe, "");
                    File.Delete(probe);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    errors.Add($"Gateway:Journal:Path: '{o.Path}' is not a writable folder: {e.Message}");
                }
            }
            if (o.SegmentBytes < 4096) errors.Add("Gateway:Journal:SegmentBytes: must be at least 4096");
            if (o.MaxBytes < 2 * o.SegmentBytes)
                errors.Add($"Gateway:Journal:MaxBytes: must be at least twice Gateway:Journal:SegmentBytes ({o.SegmentBytes})");
            if (!Enum.IsDefined(o.Fsync))
                errors.Add($"Gateway:Journal:Fsync: '{o.Fsync}' is not a policy; use None, Interval, Always or Group");
            if (o.Fsync == FsyncPolicy.Interval && o.FsyncIntervalMs < 1) errors.Add("Gateway:Journal:FsyncIntervalMs: must be at least 1");
            if (o.Fsync == FsyncPolicy.Group)
            {
                if (o.GroupCommitFrames < 1)
                    errors.Add($"Gateway:Journal:GroupCommitFrames: must be at least 1 (frames per synced group), not {o.GroupCommitFrames}");
                if (o.GroupCommitBytes < 1)
                    errors.Add($"Gateway:Journal:GroupCommitBytes: must be at least 1 (bytes per synced group), not {o.GroupCommitBytes}");
                if (o.GroupCommitMaxDelayMs is < 0 or > 10_000)
                    errors.Add($"Gateway:Journal:GroupCommitMaxDelayMs: must be between 0 and 10000 (milliseconds from a group's first frame to its sync), not {o.GroupCommitMaxDelayMs}");
            }
        }
        else if (o.MemoryQueueCapacity < 1) errors.Add("Gateway:Journal:MemoryQueueCapacity: must be at least 1");
        if (o.MaxAge <= TimeSpan.Zero) errors.Add("Gateway:Journal:MaxAge: must be positive");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
