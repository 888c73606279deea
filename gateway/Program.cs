return await CityGateway.GatewayApp.RunAsync(args);
