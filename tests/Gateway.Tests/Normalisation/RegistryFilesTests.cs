using CityGateway.Normalisation;
using CityGateway.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CityGateway.Tests.Normalisation;

/// <summary>
/// A registry made of several files (Gateway:Registry:Path and Gateway:Registry:Paths:N): the devices
/// are their union, each file with its own device types and city; an id in two files, or a file
/// that cannot be read, refuses the registry at start-up and on reload, naming the files.
/// </summary>
public sealed class RegistryFilesTests : IDisposable
{
    private readonly TempDir _dir = new("registry-files");

    public void Dispose() => _dir.Dispose();

    /// <summary>The simulated fleet's file: environment devices of "lumen".</summary>
    private string Fleet(params string[] devices) => Replace(Registries.Environment(devices), _dir.File("fleet.json"));

    /// <summary>Writes the file whole, as a generator or an editor saving it does (a reload never sees half a file).</summary>
    private string Replace(DeviceRegistryFile file, string path)
    {
        var temp = Registries.Write(file, _dir.File($"writing-{Guid.NewGuid():N}.tmp"));
        File.Move(temp, path, overwrite: true);
        return path;
    }

    /// <summary>A user's own file: a traffic counter type of its own, city "gotham", district "centre" as in the fleet.</summary>
    private string Own(params string[] devices)
    {
        var file = new DeviceRegistryFile { City = "gotham" };
        file.DeviceTypes["counter"] = new DeviceTypeEntry
        {
            Domain = "traffic",
            Fields = { ["count"] = new FieldMapping { Metric = "intensity", Unit = "vehicles" } },
        };
        foreach (var d in devices) file.Devices[d] = new DeviceEntry { Type = "counter", District = "centre", Site = "bridge" };
        return Replace(file, _dir.File("own.json"));
    }

    private static RegistryFile[] Files(params string[] paths) =>
        paths.Select((p, i) => i == 0 ? new RegistryFile(RegistryOptions.PathKey, p) : new RegistryFile($"{RegistryOptions.PathsKey}:{i - 1}", p)).ToArray();

    private static RegistryException Refused(params string[] paths) =>
        Assert.Throws<RegistryException>(() => DeviceRegistry.LoadFiles(Files(paths)));

    [Fact]
    public void Devices_are_the_union_of_the_files_each_with_its_own_types_and_city()
    {
        var registry = DeviceRegistry.LoadFiles(Files(Fleet("env-0001", "env-0002"), Own("tc-01")));

        Assert.Equal(3, registry.Count);
        Assert.True(registry.TryGet("env-0001", out var env));
        Assert.Equal(("lumen", "centre", "environment", "aq-us"), (env.City, env.District, env.Domain, env.Type.Name));
        Assert.True(registry.TryGet("tc-01", out var tc));
        Assert.Equal(("gotham", "centre", "traffic", "counter"), (tc.City, tc.District, tc.Domain, tc.Type.Name));
        Assert.Equal("intensity", tc.Type.Fields["count"].FieldName);
        // A name repeated across files is kept once.
        Assert.Same(env.District, tc.District);
    }

    [Fact]
    public void One_file_loads_as_LoadFile_loads_it()
    {
        var path = Fleet("env-0001", "env-0002");
        var registry = DeviceRegistry.LoadFiles(Files(path));
        Assert.Equal(path, registry.Source);
        Assert.Equal(DeviceRegistry.LoadFile(path).Devices.Select(d => d.Id).Order(), registry.Devices.Select(d => d.Id).Order());
    }

    [Fact]
    public void A_device_in_two_files_is_refused_naming_the_id_and_both_files()
    {
        var fleet = Fleet("env-0001", "env-0002");
        var own = Own("tc-01", "env-0002");

        var e = Refused(fleet, own);

        var failure = Assert.Single(e.Failures);
        Assert.StartsWith("Gateway:Registry:Paths:0: ", failure);
        Assert.Contains("'env-0002'", failure);
        Assert.Contains($"'{own}'", failure);
        Assert.Contains($"'{fleet}' (Gateway:Registry:Path)", failure);
        Assert.Contains("one file only", failure);
        Assert.DoesNotContain("env-0001", failure);
    }

    [Fact]
    public void Many_ids_in_two_files_are_counted_and_the_first_ones_named()
    {
        var ids = Enumerable.Range(1, 30).Select(i => $"env-{i:D4}").ToArray();
        var fleet = Fleet(ids);
        var copy = Registries.Write(Registries.Environment(ids), _dir.File("copy.json"));

        var failure = Assert.Single(Refused(fleet, copy).Failures);

        Assert.Contains("30 device id(s)", failure);
        Assert.Contains("'env-0020' and 10 more", failure);
        Assert.DoesNotContain("env-0021", failure);
    }

    [Fact]
    public void A_missing_second_file_is_refused_naming_its_key_and_path()
    {
        var missing = _dir.File("no-such-file.json");

        var failure = Assert.Single(Refused(Fleet("env-0001"), missing).Failures);

        Assert.StartsWith("Gateway:Registry:Paths:0: cannot read the device registry", failure);
        Assert.Contains(missing, failure);
    }

    [Fact]
    public void Errors_in_several_files_are_listed_together_each_under_its_key()
    {
        var broken = _dir.File("broken.json");
        File.WriteAllText(broken, """{"city":"lumen","deviceTypes":{},"devices":{"d1":{"type":"missing","district":"x"}}}""");
        var missing = _dir.File("no-such-file.json");
        var copy = Registries.Write(Registries.Environment("env-0001"), _dir.File("copy.json"));

        var e = Refused(broken, Fleet("env-0001"), missing, copy);

        Assert.Equal(3, e.Failures.Count);
        Assert.StartsWith("Gateway:Registry:Path: ", e.Failures[0]);
        Assert.Contains("devices.d1.type", e.Failures[0]);
        Assert.StartsWith("Gateway:Registry:Paths:1: ", e.Failures[1]);
        Assert.Contains(missing, e.Failures[1]);
        // The files that could be read are still compared.
        Assert.StartsWith("Gateway:Registry:Paths:2: ", e.Failures[2]);
        Assert.Contains("'env-0001'", e.Failures[2]);
        Assert.Contains("(Gateway:Registry:Paths:0)", e.Failures[2]);
    }

    [Fact]
    public async Task The_gateway_reads_Path_and_every_Paths_entry_from_configuration()
    {
        var third = Registries.Write(Registries.Environment("env-0100"), _dir.File("third.json"));
        await using var app = GatewayApp.Build(["--Gateway:Registry:Path=" + Fleet("env-0001"), "--Gateway:Registry:Paths:0=" + Own("tc-01"),
            "--Gateway:Registry:Paths:1=" + third, "--Gateway:Journal:Path=" + _dir.File("journal")]);

        GatewayApp.ValidateConfiguration(app.Services);

        var holder = app.Services.GetRequiredService<RegistryHolder>();
        Assert.Equal(["env-0001", "env-0100", "tc-01"], holder.Current.Devices.Select(d => d.Id).Order());
        Assert.Equal([RegistryOptions.PathKey, "Gateway:Registry:Paths:0", "Gateway:Registry:Paths:1"], holder.Files.Select(f => f.Key));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Paths_alone_is_the_registry_when_Path_is_not_given_or_set_empty(bool pathSetEmpty)
    {
        string[] path = pathSetEmpty ? ["--Gateway:Registry:Path="] : [];
        await using var app = GatewayApp.Build([.. path, "--Gateway:Registry:Paths:0=" + Fleet("env-0001"),
            "--Gateway:Registry:Paths:1=" + Own("tc-01"), "--Gateway:Journal:Path=" + _dir.File("journal")]);

        GatewayApp.ValidateConfiguration(app.Services);

        var holder = app.Services.GetRequiredService<RegistryHolder>();
        Assert.Equal(["env-0001", "tc-01"], holder.Current.Devices.Select(d => d.Id).Order());
        Assert.Equal(["Gateway:Registry:Paths:0", "Gateway:Registry:Paths:1"], holder.Files.Select(f => f.Key));
    }

    [Fact]
    public async Task A_change_to_any_file_reloads_all_and_a_change_with_a_clash_or_a_missing_file_is_refused()
    {
        var fleet = Fleet("env-0001", "env-0002");
        var own = Own("tc-01");
        var logger = new ListLogger<RegistryHolder>();
        var holder = new RegistryHolder(Options.Create(new RegistryOptions { Path = fleet, Paths = [own] }), logger);
        Assert.Equal(3, holder.Current.Count);
        await holder.StartAsync(CancellationToken.None);
        try
        {
            // The second file changes: the registry is reloaded from both.
            Own("tc-01", "tc-02");
            await Wait.UntilAsync(() => holder.Current.TryGet("tc-02", out _), TimeSpan.FromSeconds(15), () => "second file's change not loaded");
            Assert.Equal(4, holder.Current.Count);

            // The first file is regenerated with a device the second file has: refused, the previous registry stays.
            Fleet("env-0001", "env-0002", "env-0003", "tc-02");
            await Wait.UntilAsync(() => logger.Entries.Any(e => e.EventId == 5002), TimeSpan.FromSeconds(15), () => "clash not refused");
            var refused = logger.Entries.Single(e => e.EventId == 5002).Message;
            Assert.Contains("'tc-02'", refused);
            Assert.Contains(fleet, refused);
            Assert.Contains(own, refused);
            Assert.Equal(4, holder.Current.Count);
            Assert.False(holder.Current.TryGet("env-0003", out _));

            // The clash is resolved in the second file: both files are read again, the first file's new device included.
            Own("tc-01");
            await Wait.UntilAsync(() => holder.Current.TryGet("env-0003", out _), TimeSpan.FromSeconds(15), () => "fixed registry not loaded");
            Assert.Equal(["env-0001", "env-0002", "env-0003", "tc-01", "tc-02"], holder.Current.Devices.Select(d => d.Id).Order());
            Assert.True(holder.Current.TryGet("tc-02", out var moved));
            Assert.Equal("lumen", moved.City); // now the first file's device

            // The second file is deleted: refused, naming it; the registry in force is kept.
            File.Delete(own);
            await Wait.UntilAsync(() => logger.Entries.Count(e => e.EventId == 5002) == 2, TimeSpan.FromSeconds(15), () => "missing file not refused");
            var missing = logger.Entries.Where(e => e.EventId == 5002).Last().Message;
            Assert.Contains("Gateway:Registry:Paths:0: cannot read the device registry", missing);
            Assert.Contains(own, missing);
            Assert.Equal(5, holder.Current.Count);
        }
        finally
        {
            await holder.StopAsync(CancellationToken.None);
        }
    }
}
