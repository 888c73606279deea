using CityGateway.Configuration;
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
        var services = builder.Services;
        services.AddOptions<MqttConnectionOptions>().Bind(config.GetSection("Mqtt")).ValidateOnStart();
        services.AddOptions<RoutesOptions>().Configure(o => config.GetSection("Routes").Bind(o.Routes)).ValidateOnStart();
        services.AddOptions<RegistryOptions>().Bind(config.GetSection("Registry")).ValidateOnStart();
        services.AddOptions<NormalisationOptions>().Bind(config.GetSection("Normalisation"));
        services.AddOptions<InfluxOptions>().Bind(config.GetSection("Influx")).ValidateOnStart();
        services.AddOptions<QuarantineOptions>().Bind(config.GetSection("Quarantine"));
        services.AddOptions<PipelineOptions>().Bind(config.GetSection("Pipeline")).ValidateOnStart();
        services.AddOptions<SelfMetricsOptions>().Bind(config.GetSection("SelfMetrics"));
        services.AddOptions<OperationsOptions>().Bind(config.GetSection("Operations"));
        services.AddOptions<SerialOptions>().Configure(o => config.GetSection("Serial:Ports").Bind(o.Ports)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<SerialOptions>, SerialOptionsValidator>();
        services.AddSingleton<SerialStatus>();
        var exchange = config.GetSection("Exchange").Get<ExchangeOptions>() ?? new ExchangeOptions();
        services.AddOptions<ExchangeOptions>().Bind(config.GetSection("Exchange")).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ExchangeOptions>, ExchangeOptionsValidator>();
        if (exchange.SharesHere)
        {
            services.AddSingleton<ExchangeContext>();
            ExchangeEndpoints.AddExchangeRateLimiting(services, exchange);
        }
        services.AddProblemDetails();
        services.AddOptions<JournalOptions>().Bind(config.GetSection("Journal")).ValidateOnStart();
        services.AddSingleton<IValidateOptions<JournalOptions>, JournalOptionsValidator>();
        services.AddSingleton<IValidateOptions<MqttConnectionOptions>, MqttOptionsValidator>();
        services.AddSingleton<IValidateOptions<RoutesOptions>, RoutesOptionsValidator>();
        services.AddSingleton<IValidateOptions<RegistryOptions>, RegistryOptionsValidator>();
        services.AddSingleton<IValidateOptions<InfluxOptions>, InfluxOptionsValidator>();
        services.AddSingleton<IValidateOptions<PipelineOptions>, PipelineOptionsValidator>();

        services.AddSingleton(new DecoderCatalog());
        // Serial ports first: each has a route of its own, for its frames only.
        services.AddSingleton(sp => new RouteTable(
            sp.GetRequiredService<IOptions<SerialOptions>>().Value.Ports.Select(p => p.ToRoute())
                .Concat(sp.GetRequiredService<IOptions<RoutesOptions>>().Value.Routes),
            sp.GetRequiredService<DecoderCatalog>()));
        services.AddSingleton<GatewayMetrics>();
        services.AddSingleton<GatewayHealth>();
        services.AddSingleton<QuarantineStore>();
        services.AddSingleton<PipelineChannels>();
        services.AddSingleton<IFrameLog>(sp =>
        {
            var o = sp.GetRequiredService<IOptions<JournalOptions>>().Value;
            return o.Enabled
                ? new FileJournal(o, sp.GetRequiredService<ILoggerFactory>().CreateLogger<FileJournal>())
                : new MemoryFrameLog(o.MemoryQueueCapacity);
        });
        services.AddSingleton<RegistryHolder>();
        services.AddSingleton(sp =>
        {
            var registry = sp.GetRequiredService<RegistryHolder>();
            return new Normaliser(() => registry.Current, sp.GetRequiredService<IOptions<NormalisationOptions>>().Value);
        });
        services.AddSingleton<IMqttConnection, MosquittoConnection>();
        services.AddSingleton(sp => new InfluxClient(sp.GetRequiredService<IOptions<InfluxOptions>>().Value));

        // Hosted services stop in reverse order: the source stops intake first, then the pipeline
        // drains into the writer, which writes what is left.
        services.AddHostedService<InfluxWriterService>();
        services.AddHostedService<PipelineService>();
        services.AddSingleton<SelfMetricsService>();
        services.AddHostedService(sp => sp.GetRequiredService<SelfMetricsService>());
        services.AddHostedService(sp => sp.GetRequiredService<RegistryHolder>());
        services.AddHostedService<SiteCatalogService>();
        if (exchange.SharesHere) services.AddHostedService<ReleaseJob>();
        if (exchange.FederatesHere)
        {
            services.AddSingleton<FederationClient>();
            services.AddHostedService(sp => sp.GetRequiredService<FederationClient>());
        }
        if (config.GetValue("Mqtt:Enabled", true)) services.AddHostedService<MqttSource>();
        services.AddHostedService<SerialSource>();

        var app = builder.Build();
        if ((exchange.Enabled || exchange.Partners.Count > 0) && !exchange.Publisher) ExchangeRoleLog.IngestOnly(app.Logger);
        HealthEndpoints.Map(app);
        QuarantineEndpoints.Map(app);
        if (exchange.SharesHere)
        {
            app.UseRateLimiter();
            ExchangeEndpoints.Map(app);
        }
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
            catch (RegistryException e) { failures.Add($"Gateway:Registry:Path: {e.Message}"); }
        }
        Check<InfluxOptions>();
        Check<PipelineOptions>();
        Check<JournalOptions>();
        Check<SerialOptions>();
        Check<ExchangeOptions>();
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
            return 0;
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
            Console.Error.WriteLine($"Configuration error, the gateway is not started: Gateway:Registry:Path: {e.Message}");
            return 2;
        }
        catch (IOException e) when (e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
        {
            Console.Error.WriteLine($"Cannot listen for HTTP: {e.Message}. Set another address with --urls or ASPNETCORE_URLS.");
            return 2;
        }
    }
}
