using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using CityGateway.Simulators;
using CityGateway.Tests.Infrastructure;

namespace CityGateway.Benchmarks.E2e;

/// <summary>
/// The benchmark's publisher, run as a process of its own (hidden sub-command <c>publish</c>) so its
/// CPU time is its own. It generates the workload's messages up front, connects through MQTTnet
/// (<see cref="MqttPublishClient"/>), says <c>ready</c>, and then takes commands on stdin:
/// <c>warm</c> publishes the warm-up set, <c>go</c> the measured set as fast as the connection
/// takes it (at most <c>--window</c> publishes not yet acknowledged, or for QoS 0 not yet written
/// to the socket; of those at most <c>--inflight</c> in flight at the broker, the rest queued in
/// the client), then reports and exits. Lines on stdout:
/// <c>ready</c>, <c>warmed PUBLISHED SECONDS</c>, <c>done PUBLISHED COMPLETED REJECTED SECONDS CPU</c>,
/// or <c>error TEXT</c>.
/// </summary>
internal static class PublishCommand
{
    public static async Task<int> RunAsync(ParseResult args)
    {
        try
        {
            return await RunCoreAsync(args);
        }
        catch (Exception e)
        {
            Console.WriteLine("error " + e.Message.ReplaceLineEndings(" "));
            return 1;
        }
    }

    private static async Task<int> RunCoreAsync(ParseResult args)
    {
        var workload = Workload.FromArguments(args);
        string broker = args.GetValue<string>("--broker")!;
        int qos = args.GetValue<int>("--qos");
        int window = args.GetValue<int>("--window");
        var warm = workload.WarmupSet();
        var main = workload.MainSet();

        using var slots = new SemaphoreSlim(window, window);
        long completed = 0, rejected = 0;
        using var client = new MqttPublishClient(new MqttPublishClientOptions
        {
            Url = broker,
            ClientId = "bench-pub-" + Guid.NewGuid().ToString("N")[..8],
            MaxInFlight = args.GetValue<int>("--inflight"),
        });
        // A QoS 1 PUBACK, or a QoS 0 publish written to the socket.
        client.Completed = (_, reason) =>
        {
            if (reason >= 0x80) Interlocked.Increment(ref rejected);
            Interlocked.Increment(ref completed);
            slots.Release();
        };
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await client.ConnectAsync(timeout.Token);
        }
        catch (MqttConnectionRefusedException e)
        {
            throw new InvalidOperationException($"{broker} refused the connection: {e.Message}");
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"cannot connect to {broker}: {MqttPublishClient.Describe(e)}");
        }
        GC.Collect();
        Console.WriteLine("ready");

        long published = 0;
        void PublishAll(BenchMessage[] set)
        {
            foreach (var m in set)
            {
                slots.Wait();
                if (!client.TryPublish(m.Topic, m.Payload, qos, null, out var error, out _))
                    throw new InvalidOperationException(error);
                published++;
            }
            var deadline = Stopwatch.StartNew();
            while (Interlocked.Read(ref completed) < published)
            {
                if (deadline.Elapsed > TimeSpan.FromSeconds(120))
                    throw new TimeoutException($"{published - Interlocked.Read(ref completed)} publishes not completed after 120 s");
                Thread.Sleep(1);
            }
        }

        while (Console.ReadLine() is { } command)
        {
            if (command == "warm")
            {
                var sw = Stopwatch.StartNew();
                PublishAll(warm);
                Console.WriteLine(FormattableString.Invariant($"warmed {warm.Length} {sw.Elapsed.TotalSeconds:F3}"));
            }
            else if (command == "go")
            {
                long before = published, completedBefore = Interlocked.Read(ref completed);
                double cpu = ServiceProcess.CpuSeconds(Environment.ProcessId);
                var sw = Stopwatch.StartNew();
                PublishAll(main);
                double seconds = sw.Elapsed.TotalSeconds;
                cpu = ServiceProcess.CpuSeconds(Environment.ProcessId) - cpu;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"done {published - before} {Interlocked.Read(ref completed) - completedBefore} {Interlocked.Read(ref rejected)} {seconds:F3} {cpu:F2}"));
                break;
            }
        }
        client.Stop();
        return 0;
    }
}
