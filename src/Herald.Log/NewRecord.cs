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
}
