namespace Herald.Log;

/// <summary>A record to append. A null <see cref="Key"/> is Kafka's null key; a null
/// <see cref="Value"/> is a tombstone. <see cref="TimestampMs"/> below zero means "now".</summary>
public readonly record struct NewRecord(
    ReadOnlyMemory<byte>? Key,
    ReadOnlyMemory<byte>? Value,
    IReadOnlyList<LogHeader>? Headers = null,
    long TimestampMs = -1);
