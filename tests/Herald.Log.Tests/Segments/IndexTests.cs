using CsCheck;
using Herald.Log.Internal;
using Herald.Log.Segments;
using static Herald.Log.Tests.LogTestKit;

namespace Herald.Log.Tests.Segments;

public class IndexTests
{
    /// <summary>Small segments and a sparse index, so that reads cross many segments and most
    /// lookups scan past an index entry.</summary>
    private static TopicOptions Options(int indexInterval) => new()
    {
        MaxBatchBytes = 1024,
        SegmentBytes = 3000,
        IndexIntervalBytes = indexInterval,
        Durability = DurabilityMode.AckOnWrite, // durability is not under test here; keeps the property fast
    };

    /// <summary>A workload: appends of 1 to 6 records, values of 0 to 120 bytes, and a timestamp per
    /// record that mostly rises but sometimes jumps back.</summary>
    private static readonly Gen<(int Records, int ValueBytes, int Jitter)[]> GenAppends =
        Gen.Select(Gen.Int[1, 6], Gen.Int[0, 120], Gen.Frequency((8, Gen.Int[-20, 40]), (1, Gen.Int[-3000, -100]), (1, Gen.Int[100, 2000])))
            .Array[40, 160];

    private static async Task<List<(long Offset, long Timestamp)>> AppendAsync(LogPartition p, (int Records, int ValueBytes, int Jitter)[] appends)
    {
        var written = new List<(long, long)>();
        var ts = 1_700_000_000_000L;
        foreach (var (count, valueBytes, jitter) in appends)
        {
            var records = new NewRecord[count];
            var stamps = new long[count];
            for (var i = 0; i < count; i++)
            {
                ts += 10;
                stamps[i] = ts + jitter * (i + 1) % 997;
                records[i] = new NewRecord(Utf8($"k{written.Count + i}"), new byte[valueBytes], null, stamps[i]);
            }
            var first = await p.AppendAsync(records);
            for (var i = 0; i < count; i++) written.Add((first + i, stamps[i]));
        }
        return written;
    }

    [Fact]
    public async Task Read_returns_the_batch_holding_any_offset_across_many_segments_before_and_after_reopen()
    {
        await Gen.Select(GenAppends, Gen.OneOf(Gen.Const(64), Gen.Const(700))).SampleAsync(async (appends, interval) =>
        {
            using var dir = new TempDirectory();
            var options = new EmbeddedLogOptions { MaintenanceInterval = null };
            long end;
            await using (var log = EmbeddedLog.Open(dir.Path, options))
            {
                var p = log.GetOrCreateTopic("t", Options(interval))[0];
                var written = await AppendAsync(p, appends);
                end = written.Count;
                Assert.Equal(end, p.EndOffset);
                AssertEveryOffsetReadable(p);
            }
            await using (var log = EmbeddedLog.Open(dir.Path, options))
            {
                var p = log.GetOrCreateTopic("t")[0];
                Assert.Equal(1, p.Recovery.IndexesRebuilt); // only the active segment is scanned; sealed ones load their index files
                Assert.Equal(end, p.EndOffset);
                AssertEveryOffsetReadable(p);
            }
        }, iter: 12, threads: 1);
    }

    [Fact]
    public async Task The_offset_index_is_sparse_and_lookups_scan_past_its_entries()
    {
        using var dir = new TempDirectory();
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        var p = log.GetOrCreateTopic("t", Options(700))[0];
        for (var i = 0; i < 200; i++) await p.AppendAsync(Record($"k{i}", new string('v', 40)));

        var sealedSegment = p.Segments[0];
        var batches = BatchesIn(sealedSegment.LogPath);
        Assert.True(sealedSegment.Index.OffsetEntryCount < batches.Count / 3,
            $"{sealedSegment.Index.OffsetEntryCount} index entries for {batches.Count} batches is not sparse");
        Assert.True(sealedSegment.Index.OffsetEntryCount >= 2);
        AssertEveryOffsetReadable(p);
    }

    /// <summary>Read(offset, 1) returns exactly one whole batch, the one whose offsets include it,
    /// and its first record at or after the offset is the offset itself (no gaps without compaction).</summary>
    internal static void AssertEveryOffsetReadable(LogPartition p)
    {
        var end = p.EndOffset;
        for (var offset = p.StartOffset; offset < end; offset++)
        {
            var read = p.Read(offset, 1);
            var header = Herald.Log.Batches.RecordBatch.ReadHeader(read.Batches.Span);
            Assert.Equal(header.TotalSize, read.Batches.Length);
            Assert.InRange(offset, header.BaseOffset, header.LastOffset);
            Assert.Equal(header.NextOffset, read.NextOffset);
            Assert.Equal(offset, read.Records()[0].Offset);
        }
        Assert.True(p.Read(end).IsEmpty);
        Assert.Throws<OffsetOutOfRangeException>(() => p.Read(end + 1));
    }

    [Fact]
    public async Task FindOffsetByTimestamp_returns_the_first_offset_at_or_after_the_time_across_segments_and_after_reopen()
    {
        await Gen.Select(GenAppends, Gen.OneOf(Gen.Const(64), Gen.Const(700))).SampleAsync(async (appends, interval) =>
        {
            using var dir = new TempDirectory();
            var options = new EmbeddedLogOptions { MaintenanceInterval = null };
            List<(long Offset, long Timestamp)> written;
            await using (var log = EmbeddedLog.Open(dir.Path, options))
            {
                var p = log.GetOrCreateTopic("t", Options(interval))[0];
                written = await AppendAsync(p, appends);
                Assert.True(p.SegmentCount > 2);
                AssertTimestampLookups(p, written);
            }
            await using (var log = EmbeddedLog.Open(dir.Path, options))
            {
                AssertTimestampLookups(log.GetOrCreateTopic("t")[0], written);
            }
        }, iter: 12, threads: 1);
    }

    /// <summary>Compares every lookup that can differ (each stored timestamp, one below and one above
    /// it, and the extremes) with a brute-force scan of all records in offset order.</summary>
    internal static void AssertTimestampLookups(LogPartition p, List<(long Offset, long Timestamp)> written)
    {
        var targets = written.SelectMany(w => new[] { w.Timestamp - 1, w.Timestamp, w.Timestamp + 1 })
            .Append(long.MinValue).Append(0).Append(long.MaxValue).Distinct();
        foreach (var target in targets)
        {
            long? expected = null;
            foreach (var (offset, ts) in written)
            {
                if (ts >= target) { expected = offset; break; }
            }
            var actual = p.FindOffsetByTimestamp(target);
            Assert.True(expected == actual, $"timestamp {target}: expected offset {expected?.ToString() ?? "none"}, found {actual?.ToString() ?? "none"}");
        }
    }

    [Fact]
    public void A_saved_index_loads_back_only_for_the_log_length_it_covers()
    {
        using var dir = new TempDirectory();
        var logPath = Path.Combine(dir.Path, Segment.FileName(100));
        var index = new SegmentIndex(64);
        for (var i = 0; i < 20; i++) index.OnBatch(100 + i * 3, i * 80, 80, 5_000 + i);
        index.Save(PosixFileSystem.Instance, logPath, coveredLength: 1600, nextOffset: 160, sync: false);

        var loaded = SegmentIndex.TryLoad(PosixFileSystem.Instance, logPath, 1600, 64);
        Assert.NotNull(loaded);
        Assert.Equal(160, loaded.Value.NextOffset);
        Assert.Equal(index.OffsetEntryCount, loaded.Value.Index.OffsetEntryCount);
        Assert.Equal(5_019, loaded.Value.Index.MaxTimestamp);
        for (var offset = 100L; offset < 160; offset++) Assert.Equal(index.LookupOffset(offset), loaded.Value.Index.LookupOffset(offset));
        for (var ts = 4_990L; ts < 5_030; ts++) Assert.Equal(index.LookupTime(ts), loaded.Value.Index.LookupTime(ts));

        Assert.Null(SegmentIndex.TryLoad(PosixFileSystem.Instance, logPath, 1599, 64)); // stale: covers another length
        Assert.Null(SegmentIndex.TryLoad(PosixFileSystem.Instance, logPath, 1600, 128)); // another interval
        FlipByte(SegmentIndex.TimeIndexPath(logPath), 40);
        Assert.Null(SegmentIndex.TryLoad(PosixFileSystem.Instance, logPath, 1600, 64)); // damaged (CRC)
        File.Delete(SegmentIndex.TimeIndexPath(logPath));
        Assert.Null(SegmentIndex.TryLoad(PosixFileSystem.Instance, logPath, 1600, 64)); // missing
    }
}
