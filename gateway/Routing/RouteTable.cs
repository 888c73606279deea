using CityGateway.Decoding;

namespace CityGateway.Routing;

/// <summary>Resolves a topic to its route and decoder: the first configured route whose filter matches.</summary>
public sealed class RouteTable
{
    private readonly (TopicRoute Route, IPayloadDecoder Decoder)[] _routes;

    public RouteTable(IEnumerable<TopicRoute> routes, DecoderCatalog decoders)
    {
        _routes = routes.Select(r => (r, decoders.Get(r.Format))).ToArray();
    }

    public IReadOnlyList<TopicRoute> Routes => _routes.Select(r => r.Route).ToArray();

    public bool TryResolve(string topic, out TopicRoute route, out IPayloadDecoder decoder)
    {
        foreach (var (r, d) in _routes)
        {
            if (Topics.Matches(r.Filter, topic))
            {
                route = r;
                decoder = d;
                return true;
            }
        }
        route = null!;
        decoder = null!;
        return false;
    }
}
