using CityGateway.Journal;

namespace CityGateway.Sources.Mqtt;

/// <summary>
/// The QoS 1/2 messages that are in the journal but whose PUBACK has not reached the broker, by packet
/// identifier: the ones the broker will deliver again on the session's next connection. A message that
/// comes with the DUP flag and matches one of them (same packet id, topic and payload) is already in
/// the journal: it is acknowledged, not appended a second time. After a restart the journal's newest
/// frames stand in for the list (their acknowledgements may not have left). A packet id is only reused
/// by the broker once our PUBACK for it arrived, so a message without DUP replaces what was kept under
/// its id. Bounded by the 65,535 packet ids; cleared when the broker reports that it kept no session.
/// </summary>
internal sealed class Redeliveries
{
    private readonly record struct Entry(string Topic, byte[] Payload, int Length, long Sequence);

    private readonly Dictionary<int, Entry> _byId = new();
    private readonly object _lock = new();

    public int Count
    {
        get { lock (_lock) return _byId.Count; }
    }

    /// <summary>The journal's newest frames with a delivery id from before a restart (oldest first).</summary>
    public void Seed(IEnumerable<LoggedFrame> frames)
    {
        lock (_lock)
            foreach (var (sequence, frame) in frames)
                _byId[frame.DeliveryId] = new Entry(frame.Topic, frame.Payload, frame.OriginalLength, sequence);
    }

    /// <summary>A message was appended at <paramref name="sequence"/> and waits for its acknowledgement.</summary>
    public void Journaled(int packetId, string topic, byte[] payload, int length, long sequence)
    {
        lock (_lock) _byId[packetId] = new Entry(topic, payload, length, sequence);
    }

    /// <summary>The PUBACK for <paramref name="packetId"/> left on the connection the message came on; the
    /// entry goes unless it is a later message under the same id (journaled after <paramref name="upTo"/>).</summary>
    public void Acknowledged(int packetId, long upTo)
    {
        lock (_lock)
            if (_byId.TryGetValue(packetId, out var e) && e.Sequence <= upTo) _byId.Remove(packetId);
    }

    /// <summary>True, with the journal sequence of the copy already there, when <paramref name="message"/>
    /// is the broker delivering again a message the journal holds.</summary>
    public bool IsRedelivery(in MqttIncoming message, ReadOnlySpan<byte> kept, int length, out long sequence)
    {
        sequence = -1;
        if (!message.Duplicate || message.PacketId == 0) return false;
        lock (_lock)
        {
            if (!_byId.TryGetValue(message.PacketId, out var e) || e.Length != length
                || !string.Equals(e.Topic, message.Topic, StringComparison.Ordinal) || !kept.SequenceEqual(e.Payload))
                return false;
            sequence = e.Sequence;
            return true;
        }
    }

    /// <summary>The broker kept no session: it delivers nothing again.</summary>
    public void Clear()
    {
        lock (_lock) _byId.Clear();
    }
}
