using Microsoft.AspNetCore.Http.Extensions;
using Microsoft.AspNetCore.Routing.Matching;
using Microsoft.Extensions.Options;

namespace CityGateway.Health;

/// <summary>Section Gateway:Operations: where the operator listener listens.</summary>
public sealed class OperatorListenerOptions
{
    public const string DefaultListen = "http://127.0.0.1:8081";

    /// <summary>Address of the operator listener (quarantine API, /readyz with details, /metrics).
    /// Loopback by default: put it behind the operations network, never on the internet.</summary>
    public string Listen { get; set; } = DefaultListen;

    /// <summary>The operator listener's port, or null when <see cref="Listen"/> does not parse.</summary>
    public int? Port => TryParse(Listen, out var address) ? address.Port : null;

    internal static bool TryParse(string? url, out BindingAddress address)
    {
        address = null!;
        if (string.IsNullOrWhiteSpace(url) || url.Contains(';')) return false;
        try { address = BindingAddress.Parse(url.Trim()); }
        catch (FormatException) { return false; }
        return !address.IsNamedPipe && !address.IsUnixPipe && address.Port > 0;
    }
}

internal sealed class OperatorListenerOptionsValidator(PartnerAddresses partner) : IValidateOptions<OperatorListenerOptions>
{
    public ValidateOptionsResult Validate(string? name, OperatorListenerOptions o)
    {
        if (!OperatorListenerOptions.TryParse(o.Listen, out var address))
            return ValidateOptionsResult.Fail(
                $"Gateway:Operations:Listen: '{o.Listen}' is not one address with a port other than 0, such as {OperatorListenerOptions.DefaultListen}");
        foreach (var url in partner.Urls)
            if (OperatorListenerOptions.TryParse(url, out var partner) && partner.Port == address.Port)
                return ValidateOptionsResult.Fail(
                    $"Gateway:Operations:Listen: port {address.Port} is also the partner listener's (Urls '{url}'); the operator listener needs a port of its own");
        return ValidateOptionsResult.Success;
    }
}

/// <summary>
/// The two HTTP listeners: the partner listener (Urls: exchange API, well-known document, bare
/// health) and the operator listener (Gateway:Operations:Listen: quarantine, replay, /readyz with
/// details, /metrics). Endpoints are told apart by the local port the request came in on, never by
/// the Host header, which the client chooses.
/// </summary>
public static class Listeners
{
    public const string Partner = "partner";
    public const string Operator = "operator";

    /// <summary>Kestrel's default when no address is configured.</summary>
    private const string KestrelDefault = "http://localhost:5000";

    /// <summary>The partner listener's addresses: Urls (--urls, ASPNETCORE_URLS), else Kestrel's default.</summary>
    public static string[] PartnerUrls(IConfiguration configuration) =>
        configuration[WebHostDefaults.ServerUrlsKey] is { Length: > 0 } urls
            ? urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : [KestrelDefault];

    /// <summary>Makes Kestrel listen on the partner addresses and the operator address.</summary>
    public static void Configure(WebApplicationBuilder builder)
    {
        var partner = PartnerUrls(builder.Configuration);
        var listen = builder.Configuration.GetSection("Gateway:Operations").Get<OperatorListenerOptions>()?.Listen ?? OperatorListenerOptions.DefaultListen;
        // An address that does not parse is left out here and reported by the validator, naming the key.
        var urls = OperatorListenerOptions.TryParse(listen, out _) ? [.. partner, listen.Trim()] : partner;
        // UseUrls replaces the Urls setting: the partner addresses are kept as they were configured.
        builder.Services.AddSingleton(new PartnerAddresses(partner));
        builder.WebHost.UseUrls(urls);
        builder.Services.AddSingleton<MatcherPolicy, ListenerMatcherPolicy>();
    }

    /// <summary>The endpoint answers on the operator listener only.</summary>
    public static TBuilder OnOperatorListener<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new ListenerMetadata(Operator));

    /// <summary>The endpoint answers on both listeners (liveness).</summary>
    public static TBuilder OnEveryListener<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new ListenerMetadata(null));
}

/// <summary>The partner listener's addresses as configured (Urls).</summary>
public sealed record PartnerAddresses(string[] Urls);

/// <summary>Which listener an endpoint answers on: <see cref="Listeners.Operator"/>, or null for both.
/// Endpoints without it answer on the partner listener only.</summary>
public sealed record ListenerMetadata(string? Listener);

/// <summary>
/// Splits the routing tree by listener: a request on the partner listener only ever sees partner
/// endpoints, one on the operator listener only operator endpoints (and those on both). An operator
/// endpoint is then a plain 404 on the partner listener, never a 405 that would tell it exists, and
/// two endpoints may share a path, one per listener. Runs before the HTTP-method policy for that.
/// </summary>
internal sealed class ListenerMatcherPolicy(IOptions<OperatorListenerOptions> options) : MatcherPolicy, INodeBuilderPolicy
{
    // Parsed once: the listeners are bound at start and do not change.
    private readonly int? _operatorPort = options.Value.Port;

    public override int Order => -2000;

    public bool AppliesToEndpoints(IReadOnlyList<Endpoint> endpoints) => endpoints.Count > 0;

    public IReadOnlyList<PolicyNodeEdge> GetEdges(IReadOnlyList<Endpoint> endpoints)
    {
        var partner = new List<Endpoint>();
        var operators = new List<Endpoint>();
        foreach (var endpoint in endpoints)
        {
            var metadata = endpoint.Metadata.GetMetadata<ListenerMetadata>();
            if (metadata is null || metadata.Listener is null) partner.Add(endpoint);
            if (metadata is not null && metadata.Listener is null or Listeners.Operator) operators.Add(endpoint);
        }
        var edges = new List<PolicyNodeEdge>(2);
        if (partner.Count > 0) edges.Add(new PolicyNodeEdge(Listeners.Partner, partner));
        if (operators.Count > 0) edges.Add(new PolicyNodeEdge(Listeners.Operator, operators));
        return edges;
    }

    public PolicyJumpTable BuildJumpTable(int exitDestination, IReadOnlyList<PolicyJumpTableEdge> edges)
    {
        int partner = exitDestination, operators = exitDestination;
        foreach (var edge in edges)
        {
            if (Equals(edge.State, Listeners.Operator)) operators = edge.Destination;
            else partner = edge.Destination;
        }
        return new JumpTable(_operatorPort, partner, operators);
    }

    private sealed class JumpTable(int? operatorPort, int partner, int operators) : PolicyJumpTable
    {
        public override int GetDestination(HttpContext httpContext) =>
            operatorPort is { } port && httpContext.Connection.LocalPort == port ? operators : partner;
    }
}
