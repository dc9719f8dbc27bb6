using Herald.Log.Batches;

namespace Herald.Log;

/// <summary>Whole record batches read from a partition, as stored (RecordBatch v2). The first
/// batch contains the requested offset and may begin before it.</summary>
public sealed class LogReadResult
{
    internal static readonly LogReadResult Empty = new(ReadOnlyMemory<byte>.Empty, -1, 0);

    internal LogReadResult(ReadOnlyMemory<byte> batches, long requestedOffset, long nextOffset)
    {
        Batches = batches;
        RequestedOffset = requestedOffset;
        NextOffset = nextOffset;
    }

    /// <summary>The stored bytes of the batches, back to back.</summary>
    public ReadOnlyMemory<byte> Batches { get; }

    public long RequestedOffset { get; }

    /// <summary>The offset after the last batch returned: where the next read starts.</summary>
    public long NextOffset { get; }

    public bool IsEmpty => Batches.IsEmpty;

    /// <summary>The pooled array holding <see cref="Batches"/> when the read was given a pool; the
    /// caller returns it.</summary>
    public byte[]? RentedArray { get; internal set; }

    /// <summary>Decodes the records at or after the requested offset into <paramref name="into"/>.</summary>
    public void DecodeRecords(List<LogRecord> into)
    {
        ArgumentNullException.ThrowIfNull(into);
        var data = Batches;
        while (!data.IsEmpty)
        {
            var size = (int)RecordBatch.TotalSize(data.Span);
            RecordBatchRecords.Decode(data[..size], RequestedOffset, into);
            data = data[size..];
        }
    }

    /// <summary>The records at or after the requested offset.</summary>
    public List<LogRecord> Records()
    {
        var list = new List<LogRecord>();
        DecodeRecords(list);
        return list;
    }
}
