namespace CityGateway.Exchange.Audit;

/// <summary><c>GET /api/exchange/v1/checkpoint</c>: the latest signed checkpoint of the audit log, behind the partner key.</summary>
internal static class CheckpointEndpoint
{
    public static IResult Latest(HttpContext http, ExchangeContext x)
    {
        // Not itself audited: it reveals no data, and a log entry per read would move the head the checkpoint vouches for.
        http.Response.Headers.CacheControl = "private, no-cache";
        return x.Checkpoints.Latest is { } checkpoint
            ? Results.Json(checkpoint)
            : Results.Problem(statusCode: 404, title: "No checkpoint yet",
                detail: "The city signs a checkpoint of its audit log after its first release.");
    }
}
