using System.Runtime.CompilerServices;
using Herald.Log.Batches;
using Herald.Log.Segments;

namespace Herald.Log;

public sealed partial class LogPartition
{
    /// <summary>The default read size.</summary>
    public const int DefaultReadBytes = 1024 * 1024;

    /// <summary>The most bytes one read returns (beyond a single larger batch): reads allocate
    /// what they return, so concurrent large fetches stay bounded.</summary>
    public const int MaxReadBytes = 16 * 1024 * 1024;

    /// <summary>Reads whole batches starting with the one that holds <paramref name="offset"/>, up
    /// to about <paramref name="maxBytes"/> (always at least one whole batch when any is there).
    /// Every batch returned has passed its CRC check; a damaged one stops the partition's reads
    /// at that point with a <see cref="LogCorruptionException"/> naming file and byte offset.</summary>
    public LogReadResult Read(long offset, int maxBytes = DefaultReadBytes) => Read(offset, maxBytes, null);

    /// <summary>Reads as <see cref="Read(long, int)"/> does, into an array rented from
    /// <paramref name="pool"/> (when given): the result's <see cref="LogReadResult.RentedArray"/>,
    /// which the caller returns to the pool once nothing decoded from it is in use any more.</summary>
    public LogReadResult Read(long offset, int maxBytes, System.Buffers.ArrayPool<byte>? pool)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBytes);
        maxBytes = Math.Min(maxBytes, MaxReadBytes);
        for (var attempt = 0; attempt < 16; attempt++)
        {
            var end = EndOffset;
            var segments = Volatile.Read(ref _segments);
            var start = segments[0].BaseOffset;
            // Corruption first: EndOffset stops at a damaged batch, and an out-of-range error for the
            // offsets past it would send a consumer to auto.offset.reset, skipping the damage silently.
            ThrowIfCorruptAt(offset);
            if (offset < start || offset > end) throw new OffsetOutOfRangeException(Topic, Id, offset, start, end);
            if (offset == end) return new LogReadResult(ReadOnlyMemory<byte>.Empty, offset, offset);
            var retired = false;
            for (var i = FindSegment(segments, offset); i < segments.Length; i++)
            {
                var segment = segments[i];
                if (!segment.TryAcquire()) { retired = true; break; }
                try
                {
                    if (ReadFromSegment(segment, offset, maxBytes, end, pool) is { } result) return result;
                }
                finally
                {
                    segment.Release();
                }
            }
            // No batch holds an offset in [offset, end): compaction left a gap before an empty active
            // segment. Say where the next read starts, so that a follower does not spin on the gap.
            if (!retired) return new LogReadResult(ReadOnlyMemory<byte>.Empty, offset, end);
        }
        throw new LogClosedException($"partition {this} (its segments kept changing under the read)");
    }

    private static int FindSegment(Segment[] segments, long offset)
    {
        int lo = 0, hi = segments.Length - 1, found = 0;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (segments[mid].BaseOffset <= offset) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        return found;
    }

    /// <summary>Batches from the one holding <paramref name="offset"/>, stopping before any batch at or
    /// past <paramref name="end"/>: the writer publishes a segment's committed size just before the
    /// end offset, and a read must never return what the end offset does not yet cover.</summary>
    private LogReadResult? ReadFromSegment(Segment segment, long offset, int maxBytes, long end, System.Buffers.ArrayPool<byte>? pool)
    {
        var limit = segment.CommittedSize;
        long position = segment.Index.LookupOffset(offset);
        Span<byte> head = stackalloc byte[RecordBatch.HeaderSize];
        RecordBatchHeader header = default;
        // Bounded scan: at most one index interval of batches lies between an entry and the target.
        while (true)
        {
            if (position >= limit) return null;
            if (limit - position < RecordBatch.HeaderSize || !segment.File.ReadExactly(head, position))
                throw Corrupt(segment, position, offset, $"{limit - position} bytes remain, less than a batch header");
            header = RecordBatch.ReadHeader(head);
            if (header.Magic != RecordBatch.CurrentMagic || header.TotalSize < RecordBatch.HeaderSize
                || header.TotalSize > _options.MaxBatchBytes || position + header.TotalSize > limit)
                throw Corrupt(segment, position, offset, $"batch header is damaged (length {header.Length}, magic {header.Magic})");
            if (header.NextOffset > offset) break;
            position += header.TotalSize;
        }

        var length = (int)Math.Min(limit - position, Math.Max(maxBytes, header.TotalSize));
        var buffer = pool?.Rent(length) ?? new byte[length];
        try
        {
            var result = ReadBatches(segment, buffer, length, position, offset, end, header);
            if (result is not null && pool is not null) result.RentedArray = buffer;
            else if (pool is not null) pool.Return(buffer);
            return result;
        }
        catch
        {
            pool?.Return(buffer);
            throw;
        }
    }

    private LogReadResult? ReadBatches(Segment segment, byte[] buffer, int length, long position, long offset, long end, RecordBatchHeader header)
    {
        if (!segment.File.ReadExactly(buffer.AsSpan(0, length), position))
            throw Corrupt(segment, position, header.BaseOffset, "the file is shorter than its committed size");
        var used = 0;
        var next = offset;
        while (length - used >= RecordBatch.HeaderSize)
        {
            var size = RecordBatch.TotalSize(buffer.AsSpan(used));
            if (size < RecordBatch.HeaderSize || used + size > length) break;
            if (RecordBatch.Validate(buffer.AsSpan(used, (int)size), _options.MaxBatchBytes, checkRecords: false) is { } error)
            {
                var at = RecordBatch.ReadHeader(buffer.AsSpan(used));
                var corrupt = Corrupt(segment, position + used + error.Position, Math.Max(next, at.BaseOffset), $"{error.Field}: {error.Reason}");
                if (used == 0) throw corrupt;
                break;
            }
            var batchHeader = RecordBatch.ReadHeader(buffer.AsSpan(used));
            if (batchHeader.BaseOffset >= end) break;
            next = batchHeader.NextOffset;
            used += (int)size;
        }
        // The first batch past offset is at or past end (it landed after this read took its end
        // offset): nothing below end here, so the caller answers with an empty read that moves on to end.
        if (used == 0) return null;
        return new LogReadResult(buffer.AsMemory(0, used), offset, next);
    }

    private LogCorruptionException Corrupt(Segment segment, long position, long fromOffset, string reason)
    {
        var error = new LogCorruptionException(segment.LogPath, position, reason);
        MarkCorrupt(error, fromOffset);
        return error;
    }

    /// <summary>A task that completes once a record at or after <paramref name="offset"/> may be
    /// readable: already complete when one is, otherwise the partition's shared signal for its next
    /// write (faulted when the partition closes). It cannot be cancelled; wait on it together with
    /// something else (<see cref="Task.WhenAny(Task, Task)"/> takes its continuation off again), so
    /// that waiting on many partitions throws nothing for the ones that stay quiet.</summary>
    public Task DataSignal(long offset)
    {
        var signal = Volatile.Read(ref _dataArrived);
        return EndOffset > offset ? Task.CompletedTask : signal.Task;
    }

    /// <summary>Completes once a record at or after <paramref name="offset"/> is readable.</summary>
    public async ValueTask WaitForDataAsync(long offset, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var signal = Volatile.Read(ref _dataArrived);
            if (EndOffset > offset) return;
            await signal.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The records from <paramref name="fromOffset"/> on, following the end of the log
    /// (waiting for new records) until cancelled.</summary>
    public async IAsyncEnumerable<LogRecord> ReadRecordsAsync(long fromOffset, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var offset = fromOffset;
        var records = new List<LogRecord>();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var read = Read(offset);
            if (read.IsEmpty)
            {
                offset = read.NextOffset;
                await WaitForDataAsync(offset, cancellationToken).ConfigureAwait(false);
                continue;
            }
            records.Clear();
            read.DecodeRecords(records);
            foreach (var record in records) yield return record;
            offset = read.NextOffset;
        }
    }

    /// <summary>The first offset whose record timestamp is at or after <paramref name="timestampMs"/>,
    /// or null when every record is older. A binary search over segments (by their running
    /// newest timestamp) and over the chosen segment's time index, then a bounded scan.</summary>
    public long? FindOffsetByTimestamp(long timestampMs)
    {
        for (var attempt = 0; attempt < 16; attempt++)
        {
            if (!TryFindOffsetByTimestamp(timestampMs, out var found)) continue; // a segment was retired under us: look again
            return found;
        }
        throw new LogClosedException($"partition {this} (its segments kept changing under the lookup)");
    }

    private bool TryFindOffsetByTimestamp(long timestampMs, out long? found)
    {
        found = null;
        var end = EndOffset;
        var segments = Volatile.Read(ref _segments);
        var runningMax = new long[segments.Length];
        long max = long.MinValue;
        for (var i = 0; i < segments.Length; i++) runningMax[i] = max = Math.Max(max, segments[i].MaxTimestamp);
        int lo = 0, hi = segments.Length - 1, first = -1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (runningMax[mid] >= timestampMs) { first = mid; hi = mid - 1; }
            else lo = mid + 1;
        }
        if (first < 0) return true;
        for (var i = first; i < segments.Length; i++)
        {
            var segment = segments[i];
            if (!segment.TryAcquire()) return false;
            try
            {
                found = FindInSegment(segment, timestampMs, end);
                if (found is not null) return true;
            }
            finally
            {
                segment.Release();
            }
        }
        return true;
    }

    private long? FindInSegment(Segment segment, long timestampMs, long end)
    {
        var limit = segment.CommittedSize;
        long position = segment.Index.LookupTime(timestampMs);
        Span<byte> head = stackalloc byte[RecordBatch.HeaderSize];
        while (position + RecordBatch.HeaderSize <= limit && segment.File.ReadExactly(head, position))
        {
            var header = RecordBatch.ReadHeader(head);
            if (header.TotalSize < RecordBatch.HeaderSize || position + header.TotalSize > limit)
                throw Corrupt(segment, position, header.BaseOffset, $"batch length {header.Length} is damaged");
            if (header.BaseOffset >= end) return null;
            if (header.MaxTimestamp >= timestampMs)
            {
                ThrowIfCorruptAt(header.BaseOffset);
                var batch = new byte[header.TotalSize];
                if (!segment.File.ReadExactly(batch, position) || RecordBatch.Validate(batch, _options.MaxBatchBytes) is not null)
                    throw Corrupt(segment, position, header.BaseOffset, "batch failed validation during a timestamp lookup");
                if (header.Compression != 0) return header.BaseOffset;
                var records = new List<LogRecord>(header.RecordCount);
                RecordBatchRecords.Decode(batch, 0, records);
                foreach (var r in records)
                    if (r.TimestampMs >= timestampMs && r.Offset < end) return r.Offset;
            }
            position += header.TotalSize;
        }
        return null;
    }
}
