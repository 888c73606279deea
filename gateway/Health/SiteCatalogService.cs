using CityGateway.Core;
using CityGateway.Normalisation;
using CityGateway.Storage.Influx;

namespace CityGateway.Health;

/// <summary>
/// Writes where the city's sites are to measurement "sites" (tags city, district, site, domain;
/// fields lat, lon = the mean of the site's device coordinates, devices), at start, when the
/// registry changes, and every ten minutes, so that map panels find them in any recent time range.
/// Only sites whose devices have coordinates are written.
/// </summary>
public sealed class SiteCatalogService(RegistryHolder registry, WriterQueues channels, GatewayClock clock) : BackgroundService
{
    private static readonly TimeSpan Refresh = TimeSpan.FromMinutes(10);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        DeviceRegistry? written = null;
        var lastWrite = DateTimeOffset.MinValue;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(5));
        do
        {
            var current = registry.Current;
            if (!ReferenceEquals(current, written) || DateTimeOffset.UtcNow - lastWrite >= Refresh)
            {
                foreach (var p in Points(current, clock.NowNs())) channels.SelfMetrics.Writer.TryWrite(p);
                written = current;
                lastWrite = DateTimeOffset.UtcNow;
            }
        }
        while (await Tick(timer, stoppingToken));
    }

    private static async Task<bool> Tick(PeriodicTimer timer, CancellationToken ct)
    {
        try { return await timer.WaitForNextTickAsync(ct); }
        catch (OperationCanceledException) { return false; }
    }

    internal static IEnumerable<Point> Points(DeviceRegistry registry, long now)
    {
        foreach (var site in registry.Devices
                     .Where(d => d.Latitude is not null && d.Longitude is not null && d.Site.Length > 0)
                     .GroupBy(d => (d.City, d.District, d.Site, d.Domain)))
        {
            var p = new Point("sites",
                [new("city", site.Key.City), new("district", site.Key.District), new("site", site.Key.Site), new("domain", site.Key.Domain)],
                now) { Origin = "registry" };
            p.Fields.Add(PointField.Of("lat", site.Average(d => d.Latitude!.Value)));
            p.Fields.Add(PointField.Of("lon", site.Average(d => d.Longitude!.Value)));
            p.Fields.Add(PointField.Of("devices", (long)site.Count()));
            yield return p;
        }
    }
}
