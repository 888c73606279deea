namespace CityGateway.Journal;

/// <summary>An append after the frame log was closed (shutdown): the frame is not stored, and the
/// caller counts it as dropped at shutdown.</summary>
public sealed class JournalClosedException() : Exception("the journal is closed");
