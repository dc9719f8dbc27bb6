using System.Buffers;
using Herald.Log.Batches;
using Herald.Log.Internal;
using Herald.Log.Segments;

namespace Herald.Log;

public sealed partial class LogPartition
{
    private readonly SemaphoreSlim _maintenance = new(1, 1);
    private long _compactFrom; // where the next compaction pass starts its key map (Kafka's cleaner checkpoint)

    /// <summary>Deletes whole sealed segments, oldest first, while the partition is over
    /// <see cref="TopicOptions.RetentionBytes"/> or their newest record is older than
    /// <see cref="TopicOptions.RetentionTime"/>. The active segment is never deleted, nor a segment
    /// the writer has not finished acknowledging. Returns the number of segments deleted.</summary>
    internal int ApplyRetention(DateTimeOffset now)
    {
        if (_options.Cleanup != CleanupPolicy.Delete || (_options.RetentionBytes is null && _options.RetentionTime is null)) return 0;
        var end = EndOffset;
        var removed = new List<Segment>();
        UpdateSegments(current =>
        {
            long total = 0;
            foreach (var s in current) total += s.CommittedSize;
            var cutoff = _options.RetentionTime is { } age ? (now - age).ToUnixTimeMilliseconds() : long.MinValue;
            var count = 0;
            for (var i = 0; i < CommittedSealedCount(current, end); i++)
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

    /// <summary>How many leading segments are sealed and wholly acknowledged. A segment the writer
    /// just rolled away from may still hold bytes of the group in flight (past its committed
    /// size) until <paramref name="endOffset"/> passes the next segment's base offset.</summary>
    private static int CommittedSealedCount(Segment[] segments, long endOffset)
    {
        var n = 0;
        while (n + 1 < segments.Length && segments[n + 1].BaseOffset <= endOffset) n++;
        return n;
    }

    /// <summary>Keeps the latest record per key in the sealed segments (the active one is left
    /// alone), and drops tombstones whose timestamp is older than
    /// <see cref="TopicOptions.TombstoneRetention"/>. Surviving records keep their offsets and their
    /// stored bytes. Each segment is rewritten to a temp file, fsynced and renamed over the old one,
    /// so a crash leaves either the old or the new file whole. The key map holds at most
    /// <see cref="TopicOptions.CompactionMaxKeys"/> keys (16-byte digests, as Kafka's cleaner
    /// does); records past the point where it filled are kept for a later pass, which maps keys from
    /// there on (records before it whose key that map holds are superseded), so that passes move
    /// through a log with more keys than the map holds instead of mapping its start again and again.
    /// Returns the number of records removed.</summary>
    internal long Compact(DateTimeOffset now)
    {
        if (_options.Cleanup != CleanupPolicy.Compact) return 0;
        var end = EndOffset;
        var segments = Volatile.Read(ref _segments);
        var cleanable = CommittedSealedCount(segments, end);
        if (cleanable == 0) return 0;

        var latest = new Dictionary<UInt128, long>();
        var mapStart = _compactFrom > segments[0].BaseOffset && _compactFrom < segments[cleanable].BaseOffset ? _compactFrom : segments[0].BaseOffset;
        var mapEnd = mapStart;
        var mappedSegments = 0;
        var records = new List<LogRecord>();
        var digests = new List<UInt128>();
        var newKeys = new HashSet<UInt128>();
        var full = false;
        for (var i = 0; i < cleanable && !full; i++)
        {
            mappedSegments = i + 1;
            if (segments[i].NextOffset <= mapStart) continue; // before the map: cleaned with it, not mapped
            ForEachBatch(segments[i], (batch, _) =>
            {
                if (RecordBatch.ReadHeader(batch.Span).NextOffset <= mapStart) return true;
                records.Clear();
                RecordBatchRecords.Decode(batch, mapStart, records);
                digests.Clear();
                newKeys.Clear();
                foreach (var r in records)
                {
                    var digest = KeyDigest(r.Key!.Value.Span);
                    digests.Add(digest);
                    if (!latest.ContainsKey(digest)) newKeys.Add(digest);
                }
                // A batch is mapped whole or not at all; the first batch always is, so passes progress.
                if (latest.Count > 0 && latest.Count + newKeys.Count > _options.CompactionMaxKeys) { full = true; return false; }
                for (var r = 0; r < records.Count; r++) latest[digests[r]] = records[r].Offset;
                mapEnd = RecordBatch.ReadHeader(batch.Span).NextOffset;
                return true;
            });
        }
        // A full map leaves the rest for the next pass; one that reached the end starts over.
        _compactFrom = full ? mapEnd : segments[0].BaseOffset;

        long removedTotal = 0;
        var rule = new SurvivalRule(latest, mapEnd, (now - _options.TombstoneRetention).ToUnixTimeMilliseconds());
        for (var i = 0; i < mappedSegments; i++) removedTotal += CompactSegment(segments[i], rule);
        return removedTotal;
    }

    private static UInt128 KeyDigest(ReadOnlySpan<byte> key)
    {
        Span<byte> digest = stackalloc byte[32];
        System.Security.Cryptography.SHA256.HashData(key, digest);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(digest);
    }

    /// <summary>Which records a compaction pass keeps: everything at or past the end of its key
    /// map, the latest record of each mapped key, and tombstones younger than the cutoff.</summary>
    private sealed record SurvivalRule(Dictionary<UInt128, long> Latest, long MapEnd, long TombstoneCutoff)
    {
        public bool Survives(in LogRecord record)
        {
            if (record.Offset >= MapEnd || record.Key is not { } key) return true;
            if (Latest.TryGetValue(KeyDigest(key.Span), out var newest) && newest != record.Offset) return false;
            return record.Value is not null || record.TimestampMs >= TombstoneCutoff;
        }
    }

    private long CompactSegment(Segment segment, SurvivalRule rule)
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
            var scratch = new byte[_options.MaxBatchBytes];
            long written = 0;
            var records = new List<LogRecord>();
            var stored = new List<Range>();
            ForEachBatch(segment, (batch, _) =>
            {
                records.Clear();
                stored.Clear();
                RecordBatchRecords.Decode(batch, 0, records, stored);
                var kept = 0;
                foreach (var r in records) if (rule.Survives(r)) kept++;
                removed += records.Count - kept;
                if (kept == 0) return true;
                var outputBatch = kept == records.Count ? batch.Span : Rebuild(batch.Span, records, stored, rule, scratch);
                var h = RecordBatch.ReadHeader(outputBatch);
                index.OnBatch(h.BaseOffset, written, outputBatch.Length, h.MaxTimestamp);
                output!.Write(outputBatch, written);
                written += outputBatch.Length;
                return true;
            });
            if (removed == 0)
            {
                output.Dispose();
                output = null;
                _fs.Delete(cleanedPath);
                return 0;
            }
            output.Sync();
            output.Dispose();
            output = null;
            return SwapCompacted(segment, cleanedPath, index, written) ? removed : 0;
        }
        finally
        {
            output?.Dispose();
            segment.Release();
        }
    }

    /// <summary>A batch holding only the surviving records, their stored bytes copied unchanged;
    /// the header keeps its base offset, last offset delta, timestamps and producer fields.</summary>
    private static ReadOnlySpan<byte> Rebuild(ReadOnlySpan<byte> batch, List<LogRecord> records, List<Range> stored, SurvivalRule rule, byte[] scratch)
    {
        batch[..RecordBatch.HeaderSize].CopyTo(scratch);
        var p = RecordBatch.HeaderSize;
        var count = 0;
        for (var i = 0; i < records.Count; i++)
        {
            if (!rule.Survives(records[i])) continue;
            var bytes = batch[stored[i]];
            bytes.CopyTo(scratch.AsSpan(p));
            p += bytes.Length;
            count++;
        }
        var span = scratch.AsSpan(0, p);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(span[RecordBatch.LengthOffset..], p - RecordBatch.LogOverhead);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(span[RecordBatch.RecordCountOffset..], count);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(span[RecordBatch.CrcOffset..], Crc32C.Compute(span[RecordBatch.AttributesOffset..]));
        return span;
    }

    /// <summary>Puts the cleaned file in the segment's place (rename, directory fsync, index files),
    /// or drops an emptied segment other than the first (the log start never moves, as in Kafka).</summary>
    private bool SwapCompacted(Segment segment, string cleanedPath, SegmentIndex index, long written)
    {
        var swapped = false;
        var dropped = false;
        UpdateSegments(current =>
        {
            var at = Array.IndexOf(current, segment);
            if (at < 0 || at == current.Length - 1) return current;
            swapped = true;
            dropped = written == 0 && at > 0;
            if (dropped) return [.. current[..at], .. current[(at + 1)..]];
            _fs.Move(cleanedPath, segment.LogPath);
            _fs.SyncDirectory(Directory);
            index.Save(_fs, segment.LogPath, written, segment.NextOffset, sync: true);
            var replacement = new Segment(_fs, segment.LogPath, segment.BaseOffset, _fs.Open(segment.LogPath, create: false), index)
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
        if (!swapped || dropped) _fs.Delete(cleanedPath);
        if (!swapped) return false;
        segment.Retire(deleteFiles: dropped);
        if (dropped) _fs.SyncDirectory(Directory);
        return true;
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
}
