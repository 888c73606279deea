# City telemetry gateway: container image.
#
# Build from the repository root (the build context must hold gateway/ and Directory.Build.props):
#   docker build -f deploy/containers/gateway.Dockerfile -t city-gateway .
#
# The publish step is the same command deploy/check-deploy.sh runs on a machine without a
# Docker engine:  dotnet publish gateway/Gateway.csproj -c Release -o /out
#
# Base images: since .NET 10 the mcr.microsoft.com/dotnet 10.0 tags are Ubuntu 24.04 ("noble");
# Microsoft no longer publishes Debian images for .NET 10. The gateway needs no native library
# beyond the runtime: MQTT (MQTTnet) and serial ports (System.IO.Ports) are managed packages.

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY Directory.Build.props ./
COPY gateway/ gateway/
RUN dotnet publish gateway/Gateway.csproj -c Release -o /out

FROM mcr.microsoft.com/dotnet/aspnet:10.0
# Own unprivileged user. /var/lib/city-gateway holds the journal, the quarantine file and the
# exchange data (a named volume in compose); /etc/city-gateway/registry is where the device
# registry is mounted. Both are created here with the user's ownership so that a new named
# volume mounted on them starts out owned by it.
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid gateway --home-dir /var/lib/city-gateway --no-create-home \
      --shell /usr/sbin/nologin gateway \
 && mkdir -p /var/lib/city-gateway /etc/city-gateway/registry \
 && chown gateway:gateway /var/lib/city-gateway /etc/city-gateway/registry

WORKDIR /app
COPY --from=build /out/ ./

# Partner listener 8080; operator listener 8081 (quarantine API, /readyz details, /metrics), to be
# published on the host's loopback or the operations network only.
ENV Urls=http://0.0.0.0:8080 \
    Gateway__Operations__Listen=http://0.0.0.0:8081 \
    ASPNETCORE_HTTP_PORTS="" \
    Gateway__Journal__Path=/var/lib/city-gateway/journal \
    Gateway__Quarantine__Path=/var/lib/city-gateway/quarantine.jsonl \
    Gateway__Exchange__DataPath=/var/lib/city-gateway/exchange \
    Gateway__Registry__Path=/etc/city-gateway/registry/devices.json

VOLUME ["/var/lib/city-gateway"]
EXPOSE 8080 8081
USER gateway:gateway
WORKDIR /var/lib/city-gateway

# Liveness through GET /healthz without curl (the aspnet image has none, and installing it only
# for this adds a package and its libraries to the attack surface): bash's /dev/tcp sends a plain
# HTTP/1.0 request and the status line must say 200. Readiness (/readyz: broker, InfluxDB,
# journal) is deliberately not the health check: an InfluxDB outage must not make the container
# "unhealthy" and restarted while the journal is doing its job.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && IFS= read -r -t 4 status <&3 && [[ $status == *' 200 '* ]]"]

# SIGTERM (docker stop) drains and commits within Gateway:ShutdownTimeoutSeconds (30 s by
# default): give it longer with `docker stop -t 40` / compose `stop_grace_period`.
STOPSIGNAL SIGTERM
ENTRYPOINT ["dotnet", "/app/Gateway.dll"]
