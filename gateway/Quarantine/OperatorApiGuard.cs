using System.Security.Cryptography;
using System.Text;
using CityGateway.Core;
using CityGateway.Health;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace CityGateway.Quarantine;

/// <summary>Marks an endpoint of the operator API: it needs the operator key (Gateway:Operations:ApiKey).</summary>
public sealed class OperatorKeyRequired
{
    public static readonly OperatorKeyRequired Instance = new();
}

/// <summary>
/// The operator listener's gate, run as middleware after routing and before any endpoint (so before a
/// request body is bound or read):
/// every request on the operator listener has its body bounded (Gateway:Operations:MaxRequestBodyBytes);
/// for an operator API endpoint, an address that failed to authenticate too often is refused (429)
/// without its key being checked, then the key is checked (401, counted against the address), and only
/// then is a body larger than the bound refused (413) before it is read.
/// </summary>
public sealed partial class OperatorApiGuard(IOptions<OperationsOptions> options, IOptions<OperatorListenerOptions> listener, ILogger<OperatorApiGuard> logger) : IDisposable
{
    private readonly OperationsOptions _options = options.Value;
    private readonly int? _operatorPort = listener.Value.Port;
    private readonly AuthFailureThrottle _failures = new(Math.Max(1, options.Value.AuthFailuresPerMinute));

    public static void Use(WebApplication app)
    {
        var guard = app.Services.GetRequiredService<OperatorApiGuard>();
        app.Use((http, next) => guard.InvokeAsync(http, next));
    }

    private Task InvokeAsync(HttpContext http, RequestDelegate next)
    {
        if (_operatorPort is { } port && http.Connection.LocalPort == port
            && http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
            size.MaxRequestBodySize = _options.MaxRequestBodyBytes;
        if (http.GetEndpoint()?.Metadata.GetMetadata<OperatorKeyRequired>() is null) return next(http);

        var configured = _options.ApiKey;
        if (string.IsNullOrEmpty(configured))
            return Results.Problem(statusCode: 503, title: "Operator API disabled",
                detail: "Set Gateway:Operations:ApiKey (environment variable Gateway__Operations__ApiKey) to enable it.").ExecuteAsync(http);
        var address = http.Connection.RemoteIpAddress;
        if (_failures.Throttled(address) is { } wait)
        {
            http.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            return Results.Problem(statusCode: 429, title: "Too many failed authentications",
                detail: $"More than {_failures.PerMinute} failed authentications a minute from this address; the key is not checked until the minute is over.").ExecuteAsync(http);
        }
        string? presented = null;
        var auth = http.Request.Headers.Authorization.ToString();
        if (auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) presented = auth[7..].Trim();
        else if (http.Request.Headers.TryGetValue("X-Api-Key", out var k)) presented = k.ToString();
        if (string.IsNullOrEmpty(presented) || !KeysEqual(presented, configured))
        {
            _failures.Failed(address);
            if (_failures.Throttled(address) is not null) AuthThrottled(logger, AuthFailureThrottle.PartitionOf(address), _failures.PerMinute);
            http.Response.Headers.WWWAuthenticate = "Bearer realm=\"gateway-operations\"";
            return Results.Problem(statusCode: 401, title: "Operator key required",
                detail: "Send the operator key as 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'.").ExecuteAsync(http);
        }
        if (http.Request.ContentLength > _options.MaxRequestBodyBytes)
            return Results.Problem(statusCode: 413, title: "Request body too large",
                detail: $"At most {_options.MaxRequestBodyBytes} bytes (Gateway:Operations:MaxRequestBodyBytes).").ExecuteAsync(http);
        return next(http);
    }

    /// <summary>Constant-time comparison of the hashes, so neither content nor length leaks through timing.</summary>
    private static bool KeysEqual(string presented, string configured) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), SHA256.HashData(Encoding.UTF8.GetBytes(configured)));

    [LoggerMessage(EventId = 7010, EventName = "OperatorAuthThrottled", Level = LogLevel.Warning,
        Message = "Operator API: {Address} failed to authenticate {Failures} times within a minute; its requests get 429 until the minute is over")]
    private static partial void AuthThrottled(ILogger logger, string address, int failures);

    public void Dispose() => _failures.Dispose();
}
