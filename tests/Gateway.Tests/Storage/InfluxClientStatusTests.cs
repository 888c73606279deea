using System.Net;
using CityGateway.Storage.Influx;

namespace CityGateway.Tests.Storage;

/// <summary>The write result classification that drives the writer's retry policy.</summary>
public sealed class InfluxClientStatusTests
{
    private sealed class Answer(Func<HttpRequestMessage, HttpResponseMessage> respond) : HttpMessageHandler
    {
        public List<HttpRequestMessage> Requests { get; } = [];

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            Requests.Add(request);
            return Task.FromResult(respond(request));
        }
    }

    private static async Task<WriteResult> Write(HttpStatusCode code, string body = "", Action<HttpResponseMessage>? headers = null,
        InfluxOptions? options = null)
    {
        var handler = new Answer(_ =>
        {
            var r = new HttpResponseMessage(code) { Content = new StringContent(body) };
            headers?.Invoke(r);
            return r;
        });
        using var client = new InfluxClient(options ?? new InfluxOptions { Url = "http://influx.invalid:8086" }, handler);
        return await client.WriteAsync("m f=1 1\n"u8.ToArray(), default);
    }

    [Theory]
    [InlineData(HttpStatusCode.NoContent, WriteOutcome.Accepted)]
    [InlineData(HttpStatusCode.OK, WriteOutcome.Accepted)]
    [InlineData(HttpStatusCode.RequestEntityTooLarge, WriteOutcome.TooLarge)]
    [InlineData(HttpStatusCode.BadRequest, WriteOutcome.Rejected)]
    [InlineData(HttpStatusCode.UnprocessableEntity, WriteOutcome.Rejected)]
    [InlineData(HttpStatusCode.Unauthorized, WriteOutcome.Unauthorised)]
    [InlineData(HttpStatusCode.Forbidden, WriteOutcome.Unauthorised)]
    [InlineData(HttpStatusCode.TooManyRequests, WriteOutcome.Retry)]
    [InlineData(HttpStatusCode.InternalServerError, WriteOutcome.Retry)]
    [InlineData(HttpStatusCode.ServiceUnavailable, WriteOutcome.Retry)]
    [InlineData(HttpStatusCode.RequestTimeout, WriteOutcome.Retry)]
    public async Task Status_codes_map_to_the_retry_policy(HttpStatusCode code, WriteOutcome expected)
    {
        Assert.Equal(expected, (await Write(code)).Outcome);
    }

    [Fact]
    public async Task Retry_after_is_taken_from_a_429()
    {
        var result = await Write(HttpStatusCode.TooManyRequests, headers: r => r.Headers.RetryAfter = new(TimeSpan.FromSeconds(7)));
        Assert.Equal(WriteOutcome.Retry, result.Outcome);
        Assert.Equal(TimeSpan.FromSeconds(7), result.RetryAfter);
    }

    [Fact]
    public async Task The_servers_error_message_is_kept()
    {
        var result = await Write(HttpStatusCode.BadRequest, """{"error":"partial write: field type conflict dropped=1"}""");
        Assert.Equal("partial write: field type conflict dropped=1", result.Message);
        Assert.Equal(400, result.StatusCode);
    }

    [Fact]
    public async Task A_missing_v1_database_is_retried_not_quarantined()
    {
        Assert.Equal(WriteOutcome.Retry, (await Write(HttpStatusCode.NotFound, """{"error":"database not found: \"city\""}""")).Outcome);
    }

    [Fact]
    public async Task Network_failures_are_retried()
    {
        var handler = new Answer(_ => throw new HttpRequestException("Connection refused (influx:8086)"));
        using var client = new InfluxClient(new InfluxOptions { Url = "http://influx.invalid:8086" }, handler);
        var result = await client.WriteAsync("m f=1 1\n"u8.ToArray(), default);
        Assert.Equal(WriteOutcome.Retry, result.Outcome);
        Assert.Contains("Connection refused", result.Message);
    }

    [Theory]
    [InlineData("v1", "write?db=city&precision=ns", null)]
    [InlineData("v2", "api/v2/write?org=lumen&bucket=city&precision=ns", "Token")]
    [InlineData("v3", "api/v3/write_lp?db=city&precision=nanosecond", "Bearer")]
    public async Task Each_api_version_writes_to_its_endpoint_with_its_authorisation(string version, string path, string? scheme)
    {
        var handler = new Answer(_ => new HttpResponseMessage(HttpStatusCode.NoContent));
        var options = new InfluxOptions { Url = "http://influx.invalid:8086", Version = version, Org = "lumen", Token = version == "v1" ? null : "secret", Gzip = true };
        using var client = new InfluxClient(options, handler);
        Assert.Equal(WriteOutcome.Accepted, (await client.WriteAsync("m f=1 1\n"u8.ToArray(), default)).Outcome);
        var request = Assert.Single(handler.Requests);
        Assert.Equal("http://influx.invalid:8086/" + path, request.RequestUri!.ToString());
        Assert.Equal(scheme, request.Headers.Authorization?.Scheme);
        Assert.Contains("gzip", request.Content!.Headers.ContentEncoding);
    }
}
