# City sensor fleet simulator: container image (demo and load tests, not needed in production).
#
# Build from the repository root:
#   docker build -f deploy/containers/simulators.Dockerfile -t city-simulators .
#
# The publish step is the same command deploy/check-deploy.sh runs on a machine without a
# Docker engine:  dotnet publish simulators/Simulators.csproj -c Release -o /out
#
# Runtime image: aspnet, not runtime. The simulators reference the gateway project (an ASP.NET
# Core project) for its registry and payload types, so Simulators.runtimeconfig.json asks for
# the Microsoft.AspNetCore.App shared framework, which mcr.microsoft.com/dotnet/runtime does not
# contain (the process would stop at once with "framework not found").
# deploy/check-deploy.sh checks this against the published runtimeconfig.

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY Directory.Build.props ./
COPY gateway/ gateway/
COPY simulators/ simulators/
RUN dotnet publish simulators/Simulators.csproj -c Release -o /out

FROM mcr.microsoft.com/dotnet/aspnet:10.0
# Same uid as the gateway image: the demo writes the device registry into a volume the gateway
# reads. /var/lib/city-simulators/registry is that volume's mount point.
RUN groupadd --system --gid 10001 simulator \
 && useradd --system --uid 10001 --gid simulator --home-dir /var/lib/city-simulators --no-create-home \
      --shell /usr/sbin/nologin simulator \
 && mkdir -p /var/lib/city-simulators/registry \
 && chown -R simulator:simulator /var/lib/city-simulators

WORKDIR /app
COPY --from=build /out/ ./
USER simulator:simulator
WORKDIR /var/lib/city-simulators
ENTRYPOINT ["dotnet", "/app/Simulators.dll"]
CMD ["--help"]
