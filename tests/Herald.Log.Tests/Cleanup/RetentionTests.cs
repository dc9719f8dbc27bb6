using Herald.Log.Segments;
using static Herald.Log.Tests.LogTestKit;

namespace Herald.Log.Tests.Cleanup;

public class RetentionTests
{
    private static TopicOptions Options(long? retentionBytes = null, TimeSpan? retentionTime = null) => new()
    {
        MaxBatchBytes = 1024,
        SegmentBytes = 2048,
        SegmentAge = TimeSpan.FromMinutes(30),
        RetentionBytes = retentionBytes,
        RetentionTime = retentionTime,
    };

    private static EmbeddedLogOptions LogOptions(TestClock clock) => new() { TimeProvider = clock, MaintenanceInterval = null };

    private static async Task AppendAsync(LogPartition p, int count)
    {
        for (var i = 0; i < count; i++) await p.AppendAsync(Record($"k{p.EndOffset}", $"{p.EndOffset}:" + new string('v', 200)));
    }

    private static string[] FilesOf(string logPath) => [logPath, SegmentIndex.IndexPath(logPath), SegmentIndex.TimeIndexPath(logPath)];

    [Fact]
    public async Task Size_retention_deletes_whole_sealed_segments_oldest_first_while_the_rest_still_exceeds_the_limit()
    {
        using var dir = new TempDirectory();
        var clock = new TestClock();
        await using var log = EmbeddedLog.Open(dir.Path, LogOptions(clock));
        var p = log.GetOrCreateTopic("t", Options(retentionBytes: 5000))[0];
        await AppendAsync(p, 45);
        var before = p.Segments.ToArray();
        Assert.True(before.Length >= 5, $"expected at least 5 segments, found {before.Length}");

        // Kafka's rule: delete the oldest segment while what remains without it is still >= RetentionBytes.
        var total = before.Sum(s => s.CommittedSize);
        var expectedDeleted = 0;
        while (expectedDeleted < before.Length - 1 && total - before[expectedDeleted].CommittedSize >= 5000)
            total -= before[expectedDeleted++].CommittedSize;
        Assert.InRange(expectedDeleted, 1, before.Length - 2);

        var report = await log.RunMaintenanceAsync();

        Assert.Equal(expectedDeleted, report.SegmentsDeleted);
        Assert.Equal(before[expectedDeleted..].Select(s => s.BaseOffset), p.Segments.Select(s => s.BaseOffset));
        Assert.True(p.SizeBytes >= 5000);
        Assert.True(p.SizeBytes - p.Segments[0].CommittedSize < 5000);
        AssertDeleted(before[..expectedDeleted], before[expectedDeleted..]);
        AssertStartsAt(p, before[expectedDeleted].BaseOffset, end: 45);

        Assert.Equal(0, (await log.RunMaintenanceAsync()).SegmentsDeleted); // nothing more to do
    }

    [Fact]
    public async Task Retention_never_deletes_the_active_segment()
    {
        using var dir = new TempDirectory();
        var clock = new TestClock();
        await using var log = EmbeddedLog.Open(dir.Path, LogOptions(clock));
        var p = log.GetOrCreateTopic("t", Options(retentionBytes: 0, retentionTime: TimeSpan.FromMinutes(1)))[0];
        await AppendAsync(p, 20);
        var before = p.Segments.ToArray();
        clock.Advance(TimeSpan.FromDays(30));

        var report = await log.RunMaintenanceAsync();

        Assert.Equal(before.Length - 1, report.SegmentsDeleted);
        var active = Assert.Single(p.Segments);
        Assert.Same(before[^1], active);
        Assert.All(FilesOf(active.LogPath)[..1], f => Assert.True(File.Exists(f)));
        AssertDeleted(before[..^1], [active]);
        AssertStartsAt(p, active.BaseOffset, end: 20);
        Assert.Equal(20, await p.AppendAsync(Record("k", "after")));
    }

    [Fact]
    public async Task Age_retention_deletes_sealed_segments_whose_newest_record_is_older_than_RetentionTime()
    {
        using var dir = new TempDirectory();
        var clock = new TestClock();
        await using var log = EmbeddedLog.Open(dir.Path, LogOptions(clock));
        var p = log.GetOrCreateTopic("t", Options(retentionTime: TimeSpan.FromHours(2.5)))[0];
        // One segment per hour: a segment is sealed once its first record is 30 minutes old.
        for (var hour = 0; hour < 5; hour++)
        {
            await AppendAsync(p, 3);
            if (hour < 4) clock.Advance(TimeSpan.FromHours(1));
        }
        var before = p.Segments.ToArray();
        Assert.Equal(5, before.Length);
        clock.Advance(TimeSpan.FromMinutes(10)); // now = start + 4h10m: cutoff start + 1h40m

        var first = await log.RunMaintenanceAsync();

        Assert.Equal(2, first.SegmentsDeleted); // hours 0 and 1
        AssertDeleted(before[..2], before[2..]);
        AssertStartsAt(p, before[2].BaseOffset, end: 15);

        clock.Advance(TimeSpan.FromHours(6));
        var second = await log.RunMaintenanceAsync();

        Assert.Equal(2, second.SegmentsDeleted); // hours 2 and 3; hour 4 is the active segment
        AssertDeleted(before[..4], before[4..]);
        AssertStartsAt(p, before[4].BaseOffset, end: 15);
    }

    [Fact]
    public async Task Age_retention_deletes_only_the_oldest_segments_so_the_log_keeps_no_holes()
    {
        using var dir = new TempDirectory();
        var clock = new TestClock();
        await using var log = EmbeddedLog.Open(dir.Path, LogOptions(clock));
        var p = log.GetOrCreateTopic("t", Options(retentionTime: TimeSpan.FromHours(1)))[0];
        var now = clock.NowMs;
        var old = now - (long)TimeSpan.FromDays(1).TotalMilliseconds;
        // Segment 0 holds new records; segments 1 and 2 hold old ones (producer-set timestamps).
        long ts = now;
        for (var i = 0; i < 40; i++)
        {
            if (p.SegmentCount == 2) ts = old;
            await p.AppendAsync(Record($"k{i}", new string('v', 200), ts));
        }
        Assert.True(p.SegmentCount >= 4);

        Assert.Equal(0, (await log.RunMaintenanceAsync()).SegmentsDeleted);
        Assert.Equal(0, p.StartOffset);
    }

    [Fact]
    public async Task Retention_results_survive_reopen()
    {
        using var dir = new TempDirectory();
        var clock = new TestClock();
        long start;
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions(clock)))
        {
            var p = log.GetOrCreateTopic("t", Options(retentionBytes: 3000))[0];
            await AppendAsync(p, 30);
            Assert.True((await log.RunMaintenanceAsync()).SegmentsDeleted > 0);
            start = p.StartOffset;
        }
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions(clock)))
        {
            var p = log.GetOrCreateTopic("t")[0];
            AssertStartsAt(p, start, end: 30);
        }
    }

    [Fact]
    public async Task Segment_age_counts_from_the_first_record_across_reopen_so_age_retention_still_applies()
    {
        using var dir = new TempDirectory();
        var clock = new TestClock();
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions(clock)))
        {
            await AppendAsync(log.GetOrCreateTopic("t", Options(retentionTime: TimeSpan.FromHours(2)))[0], 3);
        }
        clock.Advance(TimeSpan.FromHours(1)); // past SegmentAge (30 minutes) while the log was closed
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions(clock)))
        {
            var p = log.GetOrCreateTopic("t")[0];
            await AppendAsync(p, 1);

            Assert.Equal(2, p.SegmentCount); // the old segment was sealed by its age, not restarted at reopen
            clock.Advance(TimeSpan.FromHours(1.5));
            Assert.Equal(1, (await log.RunMaintenanceAsync()).SegmentsDeleted);
            AssertStartsAt(p, 3, end: 4);
        }
    }

    [Fact]
    public async Task A_segment_deleted_under_a_reader_keeps_its_file_until_the_reader_lets_go()
    {
        using var dir = new TempDirectory();
        var clock = new TestClock();
        await using var log = EmbeddedLog.Open(dir.Path, LogOptions(clock));
        var p = log.GetOrCreateTopic("t", Options(retentionBytes: 0))[0];
        await AppendAsync(p, 20);
        var oldest = p.Segments[0];
        Assert.True(oldest.TryAcquire()); // as Read does while it reads a segment

        Assert.True((await log.RunMaintenanceAsync()).SegmentsDeleted > 0);

        Assert.True(File.Exists(oldest.LogPath));
        var head = new byte[Herald.Log.Batches.RecordBatch.HeaderSize];
        Assert.True(oldest.File.ReadExactly(head, 0)); // still readable by the holder
        oldest.Release();
        Assert.False(File.Exists(oldest.LogPath));
        Assert.False(oldest.TryAcquire());
    }

    private static void AssertDeleted(IEnumerable<Segment> deleted, IEnumerable<Segment> kept)
    {
        foreach (var s in deleted)
            foreach (var f in FilesOf(s.LogPath)) Assert.False(File.Exists(f), $"{f} should have been deleted");
        foreach (var s in kept) Assert.True(File.Exists(s.LogPath), $"{s.LogPath} should have been kept");
    }

    private static void AssertStartsAt(LogPartition p, long start, long end)
    {
        Assert.Equal(start, p.StartOffset);
        Assert.Equal(end, p.EndOffset);
        var e = Assert.Throws<OffsetOutOfRangeException>(() => p.Read(start - 1));
        Assert.Equal((start - 1, start, end), (e.Offset, e.StartOffset, e.EndOffset));
        Assert.Throws<OffsetOutOfRangeException>(() => p.Read(0 == start ? -1 : 0));
        var records = ReadAll(p);
        Assert.Equal(Enumerable.Range((int)start, (int)(end - start)).Select(i => (long)i), records.Select(r => r.Offset));
    }
}
