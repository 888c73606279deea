namespace CityGateway.Exchange.Privacy;

/// <summary>One device's aggregate of one metric in one district over one window, with how many readings it is made of.</summary>
public readonly record struct DeviceReading(string Device, string District, double Value, long Readings);

/// <summary>
/// Bounds one device's contribution across the cells of one metric in one window.
///
/// <para><b>Rule.</b> The privacy unit is one device's contributions in one window. In one window a
/// device counts in at most one district cell per metric: when the data puts a device in several
/// districts (it moved, or its registry entry changed within the window), it is assigned to the
/// district where it has the most readings, ties broken by the ordinal order of the district names
/// (the first wins), and only its value there is used; its readings elsewhere are dropped. The
/// districts of one (window, metric) therefore hold disjoint sets of devices, which is what lets a
/// whole table of districts cost the ε of one cell (parallel composition).</para>
/// </summary>
public static class DeviceAssignment
{
    /// <summary>Per district, the values of the devices assigned to it (each device once), devices in ordinal order.</summary>
    public static Dictionary<string, List<double>> OneDistrictPerDevice(IEnumerable<DeviceReading> readings)
    {
        var best = new Dictionary<string, DeviceReading>(StringComparer.Ordinal);
        foreach (var r in readings)
        {
            if (!best.TryGetValue(r.Device, out var current)
                || r.Readings > current.Readings
                || (r.Readings == current.Readings && string.CompareOrdinal(r.District, current.District) < 0))
                best[r.Device] = r;
        }
        var result = new Dictionary<string, List<double>>(StringComparer.Ordinal);
        foreach (var r in best.Values.OrderBy(r => r.Device, StringComparer.Ordinal))
        {
            if (!result.TryGetValue(r.District, out var list)) result[r.District] = list = [];
            list.Add(r.Value);
        }
        return result;
    }
}
