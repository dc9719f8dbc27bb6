using Herald.Log.Internal;
using Herald.Log.Segments;
using Herald.Log.Tests.Segments;
using static Herald.Log.Tests.LogTestKit;

namespace Herald.Log.Tests.Recovery;

/// <summary>Each test writes a log, closes it, edits its files on disk, and reopens it.</summary>
public class CorruptionTests
{
    private const int Records = 40;
    private static readonly EmbeddedLogOptions LogOptions = new() { MaintenanceInterval = null };

    private static TopicOptions TopicOptions => new() { MaxBatchBytes = 1024, SegmentBytes = 2048, IndexIntervalBytes = 256 };

    /// <summary>Writes <see cref="Records"/> records, one batch each, over several segments; record i
    /// has value "value-i" and a timestamp that mostly rises but sometimes steps back.</summary>
    private static async Task<(string PartitionDirectory, List<(long Offset, long Timestamp)> Written)> CreateLogAsync(string dir)
    {
        var written = new List<(long, long)>();
        await using var log = EmbeddedLog.Open(dir, LogOptions);
        var p = log.GetOrCreateTopic("t", TopicOptions)[0];
        for (var i = 0; i < Records; i++)
        {
            var ts = 1_700_000_000_000 + i * 1000 - (i % 5 == 4 ? 3500 : 0);
            written.Add((await p.AppendAsync(Record($"k{i}", $"value-{i}:" + new string('v', 150), ts)), ts));
        }
        Assert.True(p.SegmentCount >= 4, $"expected at least 4 segments, found {p.SegmentCount}");
        return (p.Directory, written);
    }

    private static void AssertRecords(LogPartition p, long from, long to)
    {
        var records = ReadAll(p, from, maxBytes: 1, to: to).Where(r => r.Offset < to).ToList();
        Assert.Equal(Enumerable.Range((int)from, (int)(to - from)).Select(i => (long)i), records.Select(r => r.Offset));
        Assert.All(records, r => Assert.StartsWith($"value-{r.Offset}:", Text(r.Value), StringComparison.Ordinal));
    }

    [Fact]
    public async Task Recovery_truncates_a_torn_tail_to_the_last_whole_batch()
    {
        using var dir = new TempDirectory();
        var (partition, _) = await CreateLogAsync(dir.Path);
        var active = SegmentFiles(partition)[^1];
        var last = BatchesIn(active)[^1];
        Truncate(active, last.Position + last.Header.TotalSize / 2); // the last write was cut in half

        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions))
        {
            var p = log.GetOrCreateTopic("t")[0];
            Assert.Equal(last.Header.TotalSize / 2, p.Recovery.TruncatedBytes);
            Assert.Null(p.Recovery.Corruption);
            Assert.Equal(last.Position, new FileInfo(active).Length);
            Assert.Equal(last.Header.BaseOffset, p.EndOffset);
            AssertRecords(p, 0, p.EndOffset);

            Assert.Equal(last.Header.BaseOffset, await p.AppendAsync(Record("k", "value-" + last.Header.BaseOffset + ":again")));
        }
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions))
        {
            var p = log.GetOrCreateTopic("t")[0];
            Assert.Equal(0, p.Recovery.TruncatedBytes);
            Assert.Equal(last.Header.BaseOffset + 1, p.EndOffset);
            AssertRecords(p, 0, p.EndOffset);
        }
    }

    [Theory]
    [InlineData("a record byte")]
    [InlineData("the CRC")]
    [InlineData("the length field")]
    public async Task Recovery_truncates_a_last_batch_with_flipped_bytes_as_a_torn_write(string where)
    {
        using var dir = new TempDirectory();
        var (partition, _) = await CreateLogAsync(dir.Path);
        var active = SegmentFiles(partition)[^1];
        var last = BatchesIn(active)[^1];
        FlipByte(active, where switch
        {
            "a record byte" => last.RecordByte,
            "the CRC" => last.Position + Herald.Log.Batches.RecordBatch.CrcOffset + 1,
            _ => last.Position + Herald.Log.Batches.RecordBatch.LengthOffset + 2,
        });

        await using var log = EmbeddedLog.Open(dir.Path, LogOptions);
        var p = log.GetOrCreateTopic("t")[0];

        Assert.Equal(last.Header.TotalSize, p.Recovery.TruncatedBytes);
        Assert.Null(p.Recovery.Corruption);
        Assert.Equal(last.Header.BaseOffset, p.EndOffset);
        AssertRecords(p, 0, p.EndOffset);
        Assert.Equal(last.Header.BaseOffset, await p.AppendAsync(Record("k", "value-" + last.Header.BaseOffset + ":again")));
    }

    [Fact]
    public async Task Recovery_truncates_zero_filled_bytes_after_the_last_batch()
    {
        using var dir = new TempDirectory();
        var (partition, _) = await CreateLogAsync(dir.Path);
        var active = SegmentFiles(partition)[^1];
        var length = new FileInfo(active).Length;
        Truncate(active, length + 4096); // the size reached disk, the data did not

        await using var log = EmbeddedLog.Open(dir.Path, LogOptions);
        var p = log.GetOrCreateTopic("t")[0];

        Assert.Equal(4096, p.Recovery.TruncatedBytes);
        Assert.Null(p.Recovery.Corruption);
        Assert.Equal(length, new FileInfo(active).Length);
        Assert.Equal(Records, p.EndOffset);
        AssertRecords(p, 0, Records);
    }

    [Fact]
    public async Task A_sealed_segment_shorter_than_its_index_covers_is_reported_not_truncated()
    {
        using var dir = new TempDirectory();
        var (partition, _) = await CreateLogAsync(dir.Path);
        var sealedFile = SegmentFiles(partition)[1];
        var last = BatchesIn(sealedFile)[^1];
        Truncate(sealedFile, last.Position + 10); // acknowledged (fsynced before the roll) bytes are gone

        await using var log = EmbeddedLog.Open(dir.Path, LogOptions);
        var p = log.GetOrCreateTopic("t")[0];

        Assert.NotNull(p.Recovery.Corruption);
        Assert.Equal((sealedFile, last.Position), (p.Recovery.Corruption.File, p.Recovery.Corruption.Position));
        Assert.Equal(0, p.Recovery.TruncatedBytes);
        Assert.Equal(last.Position + 10, new FileInfo(sealedFile).Length);
        AssertRecords(p, 0, last.Header.BaseOffset);
        Assert.Throws<LogCorruptionException>(() => p.Read(last.Header.BaseOffset));
    }

    [Fact]
    public async Task A_damaged_batch_followed_by_valid_ones_in_the_active_segment_is_reported_and_nothing_is_truncated()
    {
        using var dir = new TempDirectory();
        var (partition, _) = await CreateLogAsync(dir.Path);
        var active = SegmentFiles(partition)[^1];
        var batches = BatchesIn(active);
        Assert.True(batches.Count >= 3);
        var damaged = batches[^3];
        FlipByte(active, damaged.RecordByte);
        var length = new FileInfo(active).Length;

        for (var open = 0; open < 2; open++) // reported again on the next open: never silently repaired
        {
            await using var log = EmbeddedLog.Open(dir.Path, LogOptions);
            var p = log.GetOrCreateTopic("t")[0];

            var reported = p.Recovery.Corruption;
            Assert.NotNull(reported);
            Assert.Equal((active, damaged.Position), (reported.File, reported.Position));
            Assert.Contains(active, reported.Message, StringComparison.Ordinal);
            Assert.Contains($"byte {damaged.Position}", reported.Message, StringComparison.Ordinal);
            Assert.Equal(0, p.Recovery.TruncatedBytes);
            Assert.Equal(length, new FileInfo(active).Length);

            AssertRecords(p, 0, damaged.Header.BaseOffset);
            foreach (var offset in new[] { damaged.Header.BaseOffset, damaged.Header.BaseOffset + 1, batches[^1].Header.BaseOffset })
            {
                var e = Assert.Throws<LogCorruptionException>(() => p.Read(offset));
                Assert.Equal(active, e.File);
            }
            await Assert.ThrowsAsync<LogCorruptionException>(async () => await p.AppendAsync(Record("k", "v")));
            await Assert.ThrowsAsync<LogCorruptionException>(async () =>
            {
                await foreach (var _ in p.ReadRecordsAsync(0)) { }
            });
        }
    }

    [Fact]
    public async Task A_damaged_batch_in_a_sealed_segment_stops_reads_there_naming_the_file_and_byte_offset()
    {
        using var dir = new TempDirectory();
        var (partition, written) = await CreateLogAsync(dir.Path);
        var files = SegmentFiles(partition);
        var sealedFile = files[1];
        var damaged = BatchesIn(sealedFile)[2];
        FlipByte(sealedFile, damaged.RecordByte);

        await using var log = EmbeddedLog.Open(dir.Path, LogOptions);
        var p = log.GetOrCreateTopic("t")[0];

        for (var offset = 0L; offset < damaged.Header.BaseOffset; offset++) Assert.Equal(offset, p.Read(offset, 1).Records()[0].Offset);
        var e = Assert.Throws<LogCorruptionException>(() => ReadAll(p, 0));
        Assert.Equal(sealedFile, e.File);
        Assert.InRange(e.Position, damaged.Position, damaged.End - 1);
        Assert.Contains(sealedFile, e.Message, StringComparison.Ordinal);

        // The partition stops at the damage: at it and past it, including later segments and lookups.
        Assert.Throws<LogCorruptionException>(() => p.Read(damaged.Header.BaseOffset));
        Assert.Throws<LogCorruptionException>(() => p.Read(BatchesIn(files[^1])[0].Header.BaseOffset));
        Assert.Throws<LogCorruptionException>(() => p.FindOffsetByTimestamp(written[^1].Timestamp));
        Assert.NotNull(p.Corruption);
        AssertRecords(p, 0, damaged.Header.BaseOffset);
        Assert.Equal(0, p.FindOffsetByTimestamp(0));
    }

    [Fact]
    public async Task A_damaged_last_batch_of_a_sealed_segment_is_corruption_not_a_torn_tail()
    {
        using var dir = new TempDirectory();
        var (partition, _) = await CreateLogAsync(dir.Path);
        var sealedFile = SegmentFiles(partition)[1];
        var damaged = BatchesIn(sealedFile)[^1];
        FlipByte(sealedFile, damaged.RecordByte);
        File.Delete(SegmentIndex.IndexPath(sealedFile)); // so that opening scans it
        var length = new FileInfo(sealedFile).Length;

        await using var log = EmbeddedLog.Open(dir.Path, LogOptions);
        var p = log.GetOrCreateTopic("t")[0];

        Assert.NotNull(p.Recovery.Corruption);
        Assert.Equal((sealedFile, damaged.Position), (p.Recovery.Corruption.File, p.Recovery.Corruption.Position));
        Assert.Equal(0, p.Recovery.TruncatedBytes);
        Assert.Equal(length, new FileInfo(sealedFile).Length);
        AssertRecords(p, 0, damaged.Header.BaseOffset);
        Assert.Throws<LogCorruptionException>(() => p.Read(damaged.Header.BaseOffset));
        Assert.Throws<LogCorruptionException>(() => p.Read(p.EndOffset - 1));
    }

    [Theory]
    [InlineData(".index and .timeindex")]
    [InlineData(".index")]
    [InlineData(".timeindex")]
    public async Task Deleted_index_files_are_rebuilt_on_open_and_lookups_stay_correct(string deleted)
    {
        using var dir = new TempDirectory();
        var (partition, written) = await CreateLogAsync(dir.Path);
        var files = SegmentFiles(partition);
        foreach (var file in files[..^1])
        {
            if (deleted.Contains(".index", StringComparison.Ordinal)) File.Delete(SegmentIndex.IndexPath(file));
            if (deleted.Contains(".timeindex", StringComparison.Ordinal)) File.Delete(SegmentIndex.TimeIndexPath(file));
        }

        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions))
        {
            var p = log.GetOrCreateTopic("t")[0];
            Assert.Equal(files.Length, p.Recovery.IndexesRebuilt); // every sealed segment, and the active one (always scanned)
            Assert.Null(p.Recovery.Corruption);
            Assert.Equal(0, p.Recovery.TruncatedBytes);
            Assert.All(files[..^1], f => Assert.True(File.Exists(SegmentIndex.IndexPath(f)) && File.Exists(SegmentIndex.TimeIndexPath(f))));
            Assert.Equal(Records, p.EndOffset);
            IndexTests.AssertEveryOffsetReadable(p);
            IndexTests.AssertTimestampLookups(p, written);
        }
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions))
        {
            var p = log.GetOrCreateTopic("t")[0];
            Assert.Equal(1, p.Recovery.IndexesRebuilt); // the rebuilt files were saved and are trusted now
            IndexTests.AssertTimestampLookups(p, written);
        }
    }

    [Fact]
    public async Task A_stale_index_covering_a_different_length_is_rebuilt()
    {
        using var dir = new TempDirectory();
        var (partition, written) = await CreateLogAsync(dir.Path);
        var file = SegmentFiles(partition)[0];
        var length = new FileInfo(file).Length;
        var batches = BatchesIn(file);
        // Well-formed index files for the same segment, but written when it was longer, with
        // entries that would send reads and lookups to the wrong place if they were believed.
        var stale = new SegmentIndex(TopicOptions.IndexIntervalBytes);
        for (var i = 0; i < batches.Count; i++) stale.OnBatch(batches[i].Header.BaseOffset + 1, batches[i].Position + 3, 1000, 1);
        stale.Save(PosixFileSystem.Instance, file, coveredLength: length + 100, nextOffset: batches[^1].Header.NextOffset + 1, sync: false);

        await using var log = EmbeddedLog.Open(dir.Path, LogOptions);
        var p = log.GetOrCreateTopic("t")[0];

        Assert.Equal(2, p.Recovery.IndexesRebuilt); // the stale one and the active segment
        Assert.Null(p.Recovery.Corruption);
        Assert.NotNull(SegmentIndex.TryLoad(PosixFileSystem.Instance, file, length, TopicOptions.IndexIntervalBytes)); // rewritten for the real length
        Assert.Equal(batches[^1].Header.NextOffset, p.Segments[1].BaseOffset);
        IndexTests.AssertEveryOffsetReadable(p);
        IndexTests.AssertTimestampLookups(p, written);
    }

    [Fact]
    public async Task An_empty_segment_left_by_an_interrupted_roll_becomes_the_active_segment()
    {
        using var dir = new TempDirectory();
        var (partition, _) = await CreateLogAsync(dir.Path);
        File.Create(Path.Combine(partition, Segment.FileName(Records))).Dispose();

        await using var log = EmbeddedLog.Open(dir.Path, LogOptions);
        var p = log.GetOrCreateTopic("t")[0];

        Assert.Null(p.Recovery.Corruption);
        Assert.Equal(Records, p.EndOffset);
        Assert.Equal(Records, p.Segments[^1].BaseOffset);
        Assert.Equal(Records, await p.AppendAsync(Record("k", $"value-{Records}:")));
        AssertRecords(p, 0, Records + 1);
    }
}
