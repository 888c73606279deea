using CityGateway.Core;
using CityGateway.Decoding;
using CityGateway.Exchange;
using CityGateway.Exchange.Signing;
using CityGateway.Health;
using CityGateway.Journal;
using CityGateway.Normalisation;
using CityGateway.Pipeline;
using CityGateway.Quarantine;
using CityGateway.Routing;
using CityGateway.Sources.Mqtt;
using CityGateway.Sources.Serial;
using CityGateway.Storage.Influx;
using Microsoft.Extensions.Options;

namespace CityGateway;

/// <summary>The composition root: configuration, stages, endpoints. Nothing else lives here.</summary>
public static class GatewayApp
{
    public static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            // appsettings.json ships next to the binary; relative paths in it resolve from the working directory.
            ContentRootPath = AppContext.BaseDirectory,
        });
        // Two listeners: partner (Urls) and operator (Gateway:Operations:Listen).
        Listeners.Configure(builder);
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fff ";
            o.UseUtcTimestamp = true;
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(
            builder.Configuration.GetValue("Gateway:ShutdownTimeoutSeconds", 30)));

        var config = builder.Configuration.GetSection("Gateway");
        // The stages, each binding and validating its own section. The data path starts writer,
        // pipeline and sources in that order and stops them the other way round (DataPath).
        var services = builder.Services;
        services.AddGatewayCore(config);
        services.AddJournal(config);
        services.AddMqttSource(config);
        services.AddSerialSource(config);
        services.AddPipeline(config);
        services.AddQuarantine(config);
        services.AddInfluxWriter(config);
        services.AddOperations(config);
        var exchange = services.AddExchange(config);
        services.AddProblemDetails();

        var app = builder.Build();
        if ((exchange.Enabled || exchange.Partners.Count > 0) && !exchange.Publisher) ExchangeRoleLog.IngestOnly(app.Logger);
        HealthEndpoints.Map(app);
        Telemetry.Map(app);
        QuarantineEndpoints.Map(app);
        if (exchange.SharesHere) ExchangeEndpoints.Map(app);
        if (exchange.SharesHere && exchange.Transparency.Enabled) CityGateway.Exchange.Transparency.TransparencyEndpoints.Map(app);
        return app;
    }

    public static void ValidateConfiguration(IServiceProvider services)
    {
        var failures = new List<string>();
        bool Check<T>() where T : class
        {
            try
            {
                _ = services.GetRequiredService<IOptions<T>>().Value;
                return true;
            }
            catch (OptionsValidationException e)
            {
                failures.AddRange(e.Failures);
                return false;
            }
        }
        Check<MqttConnectionOptions>();
        Check<RoutesOptions>();
        if (Check<RegistryOptions>())
        {
            // The registry is loaded once, here, by the holder the gateway then runs with: with
            // 100,000 devices a second load only for validation would cost time and memory.
            try { _ = services.GetRequiredService<RegistryHolder>(); }
            catch (RegistryException e) { failures.AddRange(e.Failures); } // each names its file's key
        }
        Check<InfluxOptions>();
        Check<PipelineOptions>();
        Check<QuarantineOptions>();
        Check<JournalOptions>();
        Check<SerialOptions>();
        Check<ExchangeOptions>();
        Check<OperatorListenerOptions>();
        Check<TelemetryOptions>();
        if (failures.Count > 0) throw new OptionsValidationException("Gateway", typeof(object), failures);
    }

    public static async Task<int> RunAsync(string[] args)
    {
        // "Gateway exchange <command> ...": an operator command of the data exchange, run instead of the host.
        if (args.Length > 0 && args[0] == "exchange") return ExchangeCommands.Run(args[1..], Console.Out, Console.Error);
        WebApplication app;
        try
        {
            app = Build(args);
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"Gateway start-up failed: {e.Message}");
            return 2;
        }
        try
        {
            // Resolve every validated setting before the host starts, so a configuration error is
            // reported as such (naming the key) rather than as a start-up failure with a stack trace.
            ValidateConfiguration(app.Services);
            // Open the journal (and take its lock) before the host starts, so a journal held by
            // another instance is reported as the configuration error it is.
            _ = app.Services.GetRequiredService<IFrameLog>();
            await app.RunAsync();
            // Non-zero when a data-path stage failed (DataPath), so a supervisor sees it.
            return Environment.ExitCode;
        }
        catch (OptionsValidationException e)
        {
            Console.Error.WriteLine("Configuration error, the gateway is not started:");
            foreach (var failure in e.Failures) Console.Error.WriteLine("  " + failure);
            return 2;
        }
        catch (JournalInUseException e)
        {
            Console.Error.WriteLine($"Configuration error, the gateway is not started: Gateway:Journal:Path: {e.Message}");
            return 2;
        }
        catch (RegistryException e)
        {
            Console.Error.WriteLine("Configuration error, the gateway is not started:");
            foreach (var failure in e.Failures) Console.Error.WriteLine("  " + failure);
            return 2;
        }
        catch (IOException e) when (e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
        {
            Console.Error.WriteLine($"Cannot listen for HTTP: {e.Message}. Set other addresses with --urls (partner listener) and Gateway:Operations:Listen (operator listener).");
            return 2;
        }
    }
}
