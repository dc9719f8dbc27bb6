namespace Herald.Log;

/// <summary>Stored bytes failed validation: names the file and the byte offset of the damage.
/// The partition refuses to read past it.</summary>
public sealed class LogCorruptionException(string file, long position, string reason)
    : HeraldException($"Log corruption in '{file}' at byte {position}: {reason}")
{
    public string File { get; } = file;
    public long Position { get; } = position;
    public string Reason { get; } = reason;
}

/// <summary>A record batch handed to the log is malformed; names the field and byte offset.</summary>
public sealed class InvalidRecordBatchException(string field, long position, string reason)
    : HeraldException($"Invalid record batch: field '{field}' at byte {position}: {reason}")
{
    public string Field { get; } = field;
    public long Position { get; } = position;
}

/// <summary>A record or batch is larger than the topic allows.</summary>
public sealed class RecordTooLargeException(string topic, int partition, long size, long limit, string what)
    : HeraldException($"{what} of {size} bytes for {topic}/{partition} exceeds the limit of {limit} bytes (TopicOptions.MaxBatchBytes)")
{
    public long Size { get; } = size;
    public long Limit { get; } = limit;
}

/// <summary>The disk is full. Nothing of the failed appends was acknowledged; the log resumes
/// once space is back. Retriable.</summary>
public sealed class LogDiskFullException(string file, Exception inner)
    : HeraldException($"No space left on device while writing '{file}'; the append was not acknowledged and may be retried", inner)
{
    public string File { get; } = file;
}

/// <summary>A write or fsync failed; the appends it covered were not acknowledged. The partition
/// reopens through recovery before its next append.</summary>
public sealed class LogWriteFailedException(string file, Exception inner)
    : HeraldException($"Write or fsync of '{file}' failed; the append was not acknowledged: {inner.Message}", inner)
{
    public string File { get; } = file;
}

/// <summary>Another process (or another <see cref="EmbeddedLog"/>) holds the log directory.</summary>
public sealed class LogLockedException(string directory, Exception inner)
    : HeraldException($"The log directory '{directory}' is already open in another process or instance", inner)
{
    public string Directory { get; } = directory;
}

/// <summary>A read asked for an offset outside [start, end] of the partition.</summary>
public sealed class OffsetOutOfRangeException(string topic, int partition, long offset, long start, long end)
    : HeraldException($"Offset {offset} is out of range for {topic}/{partition}: the log holds [{start}, {end})")
{
    public long Offset { get; } = offset;
    public long StartOffset { get; } = start;
    public long EndOffset { get; } = end;
}

/// <summary>The log or partition was closed.</summary>
public sealed class LogClosedException(string what) : HeraldException($"{what} is closed");
