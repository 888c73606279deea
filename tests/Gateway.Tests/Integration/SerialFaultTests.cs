using System.Text.Json;
using CityGateway.Simulators;
using CityGateway.Sources.Serial;
using CityGateway.Tests.Infrastructure;
using Xunit.Abstractions;

namespace CityGateway.Tests.Integration;

/// <summary>
/// The reasons an operator reads when a serial device fails, on real ptys: System.IO.Ports says
/// "access denied" for a missing device and "the port is closed" for an unplugged one; the gateway
/// must say what really happened, in the log and in /readyz.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class SerialFaultTests(ServicesFixture services, ITestOutputHelper output)
{
    private static readonly string[] LibraryWording = ["Access to the port", "The port is closed", "Unknown error"];

    [Fact]
    public void A_pty_torn_down_under_an_open_port_is_gone_and_opening_it_again_says_the_device_is_gone()
    {
        using var pty = new PtyPair();
        using var reader = SerialPort.Open(new SerialPortSettings { Path = pty.GatewayEnd, BaudRate = 9600 });
        pty.Kill();
        var status = SerialReadStatus.Timeout;
        string? error = null;
        var buffer = new byte[64];
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (status == SerialReadStatus.Timeout && DateTime.UtcNow < deadline) status = reader.Read(buffer, 100, out _, out error);
        Assert.Equal(SerialReadStatus.Gone, status);
        // The link may still be there for an instant after the hang-up: either reason is true.
        Assert.Contains(error, new[] { SerialFaults.HangUp, SerialFaults.DeviceGone });

        var reopen = Assert.Throws<IOException>(() => SerialPort.Open(new SerialPortSettings { Path = pty.GatewayEnd }));
        Assert.Equal($"cannot open {pty.GatewayEnd}: {SerialFaults.DeviceGone}", reopen.Message);

        pty.Start();
        using var again = SerialPort.Open(new SerialPortSettings { Path = pty.GatewayEnd });
        Assert.True(again.IsOpen);
    }

    [Fact]
    public async Task A_device_the_gateways_user_may_not_open_is_reported_as_a_permission_problem_not_as_missing()
    {
        using var pty = new PtyPair();
        string device = new FileInfo(pty.DeviceEnd).ResolveLinkTarget(returnFinalTarget: true)!.FullName;
        string message;
        if (Environment.UserName == "root")
        {
            // Root opens anything: the check runs as an unprivileged user, through the simulator
            // (it opens the port with the gateway's SerialPort) and a root-only pty.
            File.SetUnixFileMode(device, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            // The links' folder must be searchable by that user, as /dev is: only the device is refused.
            var folder = Path.GetDirectoryName(pty.DeviceEnd)!;
            File.SetUnixFileMode(folder, File.GetUnixFileMode(folder) | UnixFileMode.OtherExecute | UnixFileMode.GroupExecute);
            Assert.NotNull(ServiceProcess.Which("setpriv"));
            using var copy = new TempDir("serial-nobody");
            var dll = RunnableByAnyone(copy);
            using var run = ServiceProcess.Start("setpriv",
                $"--reuid=nobody --regid=nogroup --clear-groups dotnet {dll} serial --port {pty.DeviceEnd} --open-timeout 0 --no-progress",
                Path.GetTempPath(), new Dictionary<string, string?> { ["HOME"] = Path.GetTempPath(), ["DOTNET_CLI_HOME"] = Path.GetTempPath() });
            await Wait.UntilAsync(() => run.HasExited, TimeSpan.FromSeconds(30), () => "the simulator did not exit:\n" + run.Output);
            message = run.Output;
        }
        else
        {
            File.SetUnixFileMode(device, UnixFileMode.None);
            message = Assert.Throws<IOException>(() => SerialPort.Open(new SerialPortSettings { Path = pty.DeviceEnd })).Message;
        }
        output.WriteLine(message);
        Assert.Contains($"cannot open {pty.DeviceEnd}: {SerialFaults.PermissionDenied}", message);
        Assert.All(LibraryWording, w => Assert.DoesNotContain(w, message));
        Assert.DoesNotContain(SerialFaults.DeviceGone, message);
    }

    /// <summary>The simulator where the unprivileged user can run it: the build output may sit in a folder
    /// only its owner can enter (a clone made in a <c>mktemp -d</c> folder), so a copy of it goes into a
    /// folder anyone may enter.</summary>
    private static string RunnableByAnyone(TempDir copy)
    {
        var from = AppContext.BaseDirectory;
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(copy.Path, Path.GetRelativePath(from, dir)));
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, Path.Combine(copy.Path, Path.GetRelativePath(from, file)));
        File.SetUnixFileMode(copy.Path, File.GetUnixFileMode(copy.Path) | UnixFileMode.GroupRead | UnixFileMode.GroupExecute
            | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        return Path.Combine(copy.Path, "Simulators.dll");
    }

    [Fact]
    public async Task Unplug_and_replug_name_the_real_reason_in_the_log_and_in_readyz()
    {
        using var pty = new PtyPair();
        using var dir = new TempDir("serial-reason");
        FleetSimulator.WriteRegistry(SerialSimulator.BuildRegistry(new SerialSimulatorOptions { Format = "kv" }), dir.File("devices.json"));
        await using var gateway = new GatewayProcess("mqtt://127.0.0.1:1", services.Influx.Url, ServicesFixture.NewDatabase("serialreason"),
            dir.File("devices.json"), dir.Path,
            ["--Gateway:Mqtt:Enabled=false", .. SerialIngestionTests.PortArgs(pty.GatewayEnd, "kv"), "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:CityGateway.Sources.Serial=Information"]);
        await gateway.StartAsync(); // ready: the port is open

        pty.Kill();
        JsonElement port = default;
        await Wait.UntilAsync(async () =>
        {
            port = (await gateway.ReadyAsync()).Body.GetProperty("serial")[0];
            return port.GetProperty("state").GetString()!.StartsWith("waiting for the device");
        }, TimeSpan.FromSeconds(15), () => $"state while unplugged: {port}\n{gateway.Log}");
        Assert.False(port.GetProperty("open").GetBoolean());
        Assert.Equal(503, (await gateway.ReadyAsync()).Status);
        Assert.Equal($"waiting for the device: cannot open {pty.GatewayEnd}: {SerialFaults.DeviceGone}", port.GetProperty("state").GetString());
        await Wait.UntilAsync(() => gateway.Log.Contains($"cannot be opened: cannot open {pty.GatewayEnd}: {SerialFaults.DeviceGone}"),
            TimeSpan.FromSeconds(10), () => gateway.Log);
        string log = gateway.Log;
        Assert.True(log.Contains($"({pty.GatewayEnd}) lost: {SerialFaults.HangUp}") || log.Contains($"({pty.GatewayEnd}) lost: {SerialFaults.DeviceGone}"), log);
        Assert.All(LibraryWording, w => Assert.DoesNotContain(w, log));
        output.WriteLine("while unplugged: " + port.GetProperty("state").GetString());

        pty.Start();
        await Wait.UntilAsync(async () => (await gateway.ReadyAsync()).Status == 200, TimeSpan.FromSeconds(15),
            () => "the gateway did not reopen the port:\n" + gateway.Log);
        port = (await gateway.ReadyAsync()).Body.GetProperty("serial")[0];
        Assert.Equal("open", port.GetProperty("state").GetString());
        Assert.Equal(1, port.GetProperty("reopens").GetInt64());
        await Wait.UntilAsync(() => gateway.Log.Contains("(reopened 1 times before)"), TimeSpan.FromSeconds(10), () => gateway.Log);
    }

    [Fact]
    public void The_librarys_exceptions_are_translated_by_the_state_of_the_device_path()
    {
        using var pty = new PtyPair();
        using var dir = new TempDir("serial-faults");
        string missing = dir.File("ttyUSB7");
        // As System.IO.Ports throws them: the OS error number in the inner exception's HResult.
        var accessDenied = new UnauthorizedAccessException("Access to the port is denied.", new IOException("Unknown error 203", 203));
        var noFile = new UnauthorizedAccessException("Access to the port is denied.", new IOException("No such file or directory", 2));
        var notTty = new UnauthorizedAccessException("Access to the port is denied.", new IOException("Inappropriate ioctl for device", 25));

        Assert.Equal(SerialFaults.DeviceGone, SerialFaults.Describe(missing, accessDenied));
        Assert.Equal(SerialFaults.DeviceGone, SerialFaults.Describe(missing, noFile));
        Assert.Equal(SerialFaults.PermissionDenied, SerialFaults.Describe(pty.GatewayEnd, accessDenied));
        Assert.Equal(SerialFaults.NotATerminal, SerialFaults.Describe(pty.GatewayEnd, notTty));
        var busy = new UnauthorizedAccessException("Access to the port is denied.", new IOException("Device or resource busy", 16));
        Assert.Equal(SerialFaults.Busy, SerialFaults.Describe(pty.GatewayEnd, busy));
        Assert.Equal(SerialFaults.DeviceGone, SerialFaults.DescribeLoss(missing, new ObjectDisposedException("SerialPort", "The port is closed.")));
        Assert.Equal(SerialFaults.HangUp, SerialFaults.DescribeLoss(pty.GatewayEnd, new ObjectDisposedException("SerialPort", "The port is closed.")));
        Assert.Equal(SerialFaults.HangUp, SerialFaults.DescribeLoss(pty.GatewayEnd, new IOException("Input/output error", 5)));
    }
}
