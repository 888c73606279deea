using System.Diagnostics.Metrics;
using CityGateway.Health;
using Microsoft.Extensions.DependencyInjection;

namespace CityGateway.Tests.Infrastructure;

/// <summary>Gateway counters on a meter factory of their own, for tests that build stages by hand.</summary>
public static class TestMetrics
{
    public static GatewayMetrics New() =>
        new(new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<IMeterFactory>());
}
