namespace CityGateway.Journal;

/// <summary>An append after the frame log was closed (shutdown): the frame is not stored, and the
/// caller counts it as dropped at shutdown. Also what a durability wait gets when the journal closed
/// without its frame becoming durable (the closing sync failed, or the sequence was never appended):
/// the frame must not be acknowledged.</summary>
public sealed class JournalClosedException : Exception
{
    public JournalClosedException() : base("the journal is closed") { }

    public JournalClosedException(string message, Exception? inner = null) : base(message, inner) { }
}
