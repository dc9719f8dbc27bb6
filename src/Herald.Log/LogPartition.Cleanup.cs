using System.Buffers;
using Herald.Log.Batches;
using Herald.Log.Internal;
using Herald.Log.Segments;

namespace Herald.Log;

public sealed partial class LogPartition
{
    private readonly SemaphoreSlim _maintenance = new(1, 1);

    /// <summary>Deletes whole sealed segments, oldest first, while the partition is over
    /// <see cref="TopicOptions.RetentionBytes"/> or their newest record is older than
    /// <see cref="TopicOptions.RetentionTime"/>. The active segment is never deleted.
    /// Returns the number of segments deleted.</summary>
    internal int ApplyRetention(DateTimeOffset now)
    {
        if (_options.Cleanup != CleanupPolicy.Delete || (_options.RetentionBytes is null && _options.RetentionTime is null)) return 0;
        var removed = new List<Segment>();
        UpdateSegments(current =>
        {
            long total = 0;
            foreach (var s in current) total += s.CommittedSize;
            var cutoff = _options.RetentionTime is { } age ? (now - age).ToUnixTimeMilliseconds() : long.MinValue;
            var count = 0;
            for (var i = 0; i < current.Length - 1; i++)
            {
                var s = current[i];
                var byAge = s.MaxTimestamp < cutoff;
                var bySize = _options.RetentionBytes is { } limit && total - s.CommittedSize >= limit;
                if (!byAge && !bySize) break;
                total -= s.CommittedSize;
                removed.Add(s);
                count++;
            }
            return count == 0 ? current : current[count..];
        });
        if (removed.Count == 0) return 0;
        foreach (var s in removed) s.Retire(deleteFiles: true);
        _fs.SyncDirectory(Directory);
        return removed.Count;
    }

    /// <summary>Keeps the latest record per key in the sealed segments (the active one is left
    /// alone), and drops tombstones older than <see cref="TopicOptions.TombstoneRetention"/>.
    /// Surviving records keep their offsets. Each segment is rewritten to a temp file, fsynced and
    /// renamed over the old one, so a crash leaves either the old or the new file whole.
    /// Returns the number of records removed.</summary>
    internal long Compact(DateTimeOffset now)
    {
        if (_options.Cleanup != CleanupPolicy.Compact) return 0;
        var segments = Volatile.Read(ref _segments);
        if (segments.Length < 2) return 0;

        // Map each key to its latest offset over as many sealed segments as CompactionMaxKeys allows.
        var latest = new Dictionary<byte[], long>(ByteArrayComparer.Instance);
        var mapped = 0;
        var records = new List<LogRecord>();
        for (var i = 0; i < segments.Length - 1; i++)
        {
            var full = false;
            ForEachBatch(segments[i], (batch, _) =>
            {
                records.Clear();
                RecordBatchRecords.Decode(batch, 0, records);
                foreach (var r in records)
                {
                    var key = r.Key!.Value.ToArray();
                    if (!latest.ContainsKey(key) && latest.Count >= _options.CompactionMaxKeys) { full = true; return false; }
                    latest[key] = r.Offset;
                }
                return true;
            });
            if (full) break;
            mapped = i + 1;
        }

        long removedTotal = 0;
        var tombstoneCutoff = (now - _options.TombstoneRetention).ToUnixTimeMilliseconds();
        for (var i = 0; i < mapped; i++) removedTotal += CompactSegment(segments[i], latest, tombstoneCutoff);
        return removedTotal;
    }

    private long CompactSegment(Segment segment, Dictionary<byte[], long> latest, long tombstoneCutoff)
    {
        if (!segment.TryAcquire()) return 0;
        var cleanedPath = segment.LogPath + ".cleaned";
        long removed = 0;
        LogFile? output = null;
        try
        {
            output = _fs.Open(cleanedPath, create: true);
            output.SetLength(0);
            var index = new SegmentIndex(_options.IndexIntervalBytes);
            var builder = new RecordBatchBuilder();
            var scratch = new byte[_options.MaxBatchBytes];
            long written = 0;
            var records = new List<LogRecord>();
            ForEachBatch(segment, (batch, _) =>
            {
                var header = RecordBatch.ReadHeader(batch.Span);
                records.Clear();
                RecordBatchRecords.Decode(batch, 0, records);
                var keep = 0;
                foreach (var r in records) if (Survives(r, latest, tombstoneCutoff)) keep++;
                removed += records.Count - keep;
                ReadOnlySpan<byte> output1;
                if (keep == records.Count) output1 = batch.Span;
                else if (keep == 0) return true;
                else
                {
                    builder.Begin(scratch, 0, scratch.Length, header.BaseOffset, header.BaseTimestamp);
                    foreach (var r in records)
                    {
                        if (!Survives(r, latest, tombstoneCutoff)) continue;
                        builder.TryAdd(new NewRecord(r.Key, r.Value, r.Headers), r.TimestampMs, (int)(r.Offset - header.BaseOffset));
                    }
                    output1 = scratch.AsSpan(0, builder.Finish(header.LastOffsetDelta));
                }
                var h = RecordBatch.ReadHeader(output1);
                index.OnBatch(h.BaseOffset, written, output1.Length, h.MaxTimestamp);
                output!.Write(output1, written);
                written += output1.Length;
                return true;
            });
            if (removed == 0)
            {
                output.Dispose();
                _fs.Delete(cleanedPath);
                return 0;
            }
            output.Sync();
            output.Dispose();
            output = null;

            var swapped = false;
            var dropped = false;
            Segment? replacement = null;
            UpdateSegments(current =>
            {
                var at = Array.IndexOf(current, segment);
                if (at < 0 || at == current.Length - 1) return current;
                swapped = true;
                // An emptied segment goes, except the first: it stays (empty) so that, as in Kafka,
                // compaction never moves the log start and no consumer is sent out of range.
                dropped = written == 0 && at > 0;
                if (dropped) return [.. current[..at], .. current[(at + 1)..]];
                _fs.Move(cleanedPath, segment.LogPath);
                _fs.SyncDirectory(Directory);
                index.Save(_fs, segment.LogPath, written, segment.NextOffset, sync: true);
                replacement = new Segment(_fs, segment.LogPath, segment.BaseOffset, _fs.Open(segment.LogPath, create: false), index)
                {
                    Size = written,
                    CommittedSize = written,
                    NextOffset = segment.NextOffset,
                    Sealed = true,
                };
                var copy = (Segment[])current.Clone();
                copy[at] = replacement;
                return copy;
            });
            if (!swapped)
            {
                _fs.Delete(cleanedPath);
                return 0;
            }
            if (dropped)
            {
                _fs.Delete(cleanedPath);
                segment.Retire(deleteFiles: true);
                _fs.SyncDirectory(Directory);
            }
            else
            {
                segment.Retire(deleteFiles: false);
            }
            return removed;
        }
        finally
        {
            output?.Dispose();
            segment.Release();
        }
    }

    private static bool Survives(in LogRecord record, Dictionary<byte[], long> latest, long tombstoneCutoff)
    {
        if (record.Key is not { } key) return true;
        if (latest.TryGetValue(key.ToArray(), out var newest) && newest != record.Offset) return false;
        return record.Value is not null || record.TimestampMs >= tombstoneCutoff;
    }

    /// <summary>Calls <paramref name="visit"/> with every committed batch of a segment, validated,
    /// reading the file in large chunks; stops when it returns false.</summary>
    private void ForEachBatch(Segment segment, Func<ReadOnlyMemory<byte>, long, bool> visit)
    {
        if (!segment.TryAcquire()) return;
        var chunk = ArrayPool<byte>.Shared.Rent(Math.Max(4 << 20, _options.MaxBatchBytes + RecordBatch.LogOverhead));
        try
        {
            var limit = segment.CommittedSize;
            long position = 0;
            while (position < limit)
            {
                var want = (int)Math.Min(chunk.Length, limit - position);
                if (!segment.File.ReadExactly(chunk.AsSpan(0, want), position))
                    throw Corrupt(segment, position, segment.BaseOffset, "the file is shorter than its committed size");
                var used = 0;
                while (want - used >= RecordBatch.LogOverhead)
                {
                    var size = RecordBatch.TotalSize(chunk.AsSpan(used, want - used));
                    if (size < RecordBatch.HeaderSize || size > _options.MaxBatchBytes)
                        throw Corrupt(segment, position + used, segment.BaseOffset, $"batch length {size} is out of range");
                    if (used + size > want) break;
                    var batch = chunk.AsMemory(used, (int)size);
                    if (RecordBatch.Validate(batch.Span, _options.MaxBatchBytes) is { } error)
                        throw Corrupt(segment, position + used + error.Position, RecordBatch.ReadHeader(batch.Span).BaseOffset, $"{error.Field}: {error.Reason}");
                    if (!visit(batch, position + used)) return;
                    used += (int)size;
                }
                if (used == 0) throw Corrupt(segment, position, segment.BaseOffset, "a batch runs past the committed end of the segment");
                position += used;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
            segment.Release();
        }
    }

    /// <summary>Runs retention and compaction once, as the topic's policy says.</summary>
    internal async Task<(int SegmentsDeleted, long RecordsCompacted)> RunMaintenanceAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        await _maintenance.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return (ApplyRetention(now), Compact(now));
        }
        finally
        {
            _maintenance.Release();
        }
    }

    private sealed class ByteArrayComparer : IEqualityComparer<byte[]>
    {
        public static readonly ByteArrayComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj)
        {
            var hash = new HashCode();
            hash.AddBytes(obj);
            return hash.ToHashCode();
        }
    }
}
