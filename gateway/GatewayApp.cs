namespace CityGateway;

public static class GatewayApp
{
    public static Task<int> RunAsync(string[] args) => Task.FromResult(0);
}
