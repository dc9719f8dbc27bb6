namespace Herald.Log;

/// <summary>A record to append. A null <see cref="Key"/> is Kafka's null key; a null
/// <see cref="Value"/> is a tombstone. <see cref="TimestampMs"/> below zero means "now".</summary>
public readonly record struct NewRecord(
    ReadOnlyMemory<byte>? Key,
    ReadOnlyMemory<byte>? Value,
    IReadOnlyList<LogHeader>? Headers = null,
    long TimestampMs = -1)
{
    /// <summary>Disposed exactly once when the log no longer needs the record's memory: as soon as
    /// the writer has copied it into a batch, or when the append fails or is refused. A pooled
    /// buffer behind the record can go back to its pool then, before the append is durable.</summary>
    public IDisposable? Owner { get; init; }

    /// <summary>The in-memory value the record was made from, if the producer offers it: once the
    /// record is durable, readers in this process can be handed it for a while instead of decoding
    /// the record (<see cref="LogPartition.RecentLocal"/>; the last
    /// <see cref="EmbeddedLogOptions.RecentLocalValues"/> of each partition). Never stored; only
    /// offer a value that cannot change and that decoding the record would reproduce.</summary>
    public object? Local { get; init; }
}
