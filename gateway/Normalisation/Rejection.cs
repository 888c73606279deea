namespace CityGateway.Normalisation;

/// <summary>
/// A reading (or a frame's worth of readings) the normaliser refused, with the quarantine reason and
/// detail. The normaliser only reports these; the caller decides where they go (the quarantine).
/// </summary>
public readonly record struct Rejection(string Reason, string Detail, string? Device, string? Field = null);
