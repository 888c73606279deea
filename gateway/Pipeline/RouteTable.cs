using CityGateway.Decoding;
using CityGateway.Routing;

namespace CityGateway.Pipeline;

/// <summary>Resolves a topic to its route and decoder: the first configured route whose filter matches.</summary>
public sealed class RouteTable
{
    private readonly (TopicRoute Route, IPayloadDecoder Decoder)[] _routes;

    public RouteTable(IEnumerable<TopicRoute> routes, DecoderCatalog decoders)
    {
        _routes = routes.Select(r => (r, decoders.Get(r.Format))).ToArray();
    }

    public IReadOnlyList<TopicRoute> Routes => _routes.Select(r => r.Route).ToArray();

    public bool TryResolve(string topic, out TopicRoute route, out IPayloadDecoder decoder) => TryResolve("mqtt", topic, out route, out decoder);

    /// <summary>The first route for this source whose filter matches the topic (for serial frames: the port's route).</summary>
    public bool TryResolve(string source, string topic, out TopicRoute route, out IPayloadDecoder decoder)
    {
        foreach (var (r, d) in _routes)
        {
            if (r.Source == source && Topics.Matches(r.Filter, topic))
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
