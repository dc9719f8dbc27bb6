namespace Herald.Log;

/// <summary>A record read back from the log. Key and value slice the read buffer; a null key or
/// value is Kafka's null (a null value is a tombstone).</summary>
public readonly record struct LogRecord(
    long Offset,
    long TimestampMs,
    ReadOnlyMemory<byte>? Key,
    ReadOnlyMemory<byte>? Value,
    IReadOnlyList<LogHeader> Headers);
