using CityGateway.Core;
using CityGateway.Sources.Mqtt;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CityGateway.Tests.Sources;

/// <summary>Gateway:Mqtt:Client chooses the client library; a wrong value fails at start-up naming the key.</summary>
public sealed class MqttClientSelectionTests
{
    private static ServiceProvider Compose(string? client)
    {
        var settings = new Dictionary<string, string?> { ["Gateway:Mqtt:Url"] = "mqtt://127.0.0.1:1883" };
        if (client is not null) settings["Gateway:Mqtt:Client"] = client;
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddSingleton(new StringPool(64));
        services.AddMqttSource(configuration.GetSection("Gateway"));
        return services.BuildServiceProvider();
    }

    [Theory]
    [InlineData(null, typeof(MqttNetConnection))]
    [InlineData("mqttnet", typeof(MqttNetConnection))]
    [InlineData("libmosquitto", typeof(MosquittoConnection))]
    [InlineData("LibMosquitto", typeof(MosquittoConnection))]
    public void The_client_is_the_one_configured_and_MQTTnet_by_default(string? client, Type expected)
    {
        using var provider = Compose(client);
        var descriptor = Assert.Single(ServiceDescriptors(client), d => d.ServiceType == typeof(IMqttConnection));
        Assert.Equal(expected, descriptor.ImplementationType);
        Assert.Empty(new MqttOptionsValidator().Validate(null, provider.GetRequiredService<IOptions<MqttConnectionOptions>>().Value).Failures ?? []);
    }

    [Fact]
    public void An_unknown_client_or_socket_buffer_fails_naming_the_key()
    {
        var result = new MqttOptionsValidator().Validate(null, new MqttConnectionOptions { Client = "paho", SocketBufferBytes = 100 });
        Assert.True(result.Failed);
        Assert.Contains("Gateway:Mqtt:Client: 'paho' is not mqttnet (the default) or libmosquitto", result.Failures!);
        Assert.Contains(result.Failures!, f => f.StartsWith("Gateway:Mqtt:SocketBufferBytes: 100 is outside"));
        using var provider = Compose("paho");
        var e = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<MqttConnectionOptions>>().Value);
        Assert.Contains("Gateway:Mqtt:Client", e.Message);
    }

    private static IServiceCollection ServiceDescriptors(string? client)
    {
        var settings = new Dictionary<string, string?>();
        if (client is not null) settings["Gateway:Mqtt:Client"] = client;
        var services = new ServiceCollection();
        services.AddMqttSource(new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection("Gateway"));
        return services;
    }
}
