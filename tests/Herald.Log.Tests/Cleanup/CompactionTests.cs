using CsCheck;
using Herald.Log.Batches;
using Herald.Log.Segments;
using static Herald.Log.Tests.LogTestKit;

namespace Herald.Log.Tests.Cleanup;

public class CompactionTests
{
    private static readonly TimeSpan TombstoneRetention = TimeSpan.FromDays(7);

    private static TopicOptions Options() => new()
    {
        Cleanup = CleanupPolicy.Compact,
        MaxBatchBytes = 1024,
        SegmentBytes = 2048,
        SegmentAge = TimeSpan.FromHours(1),
        TombstoneRetention = TombstoneRetention,
    };

    private static EmbeddedLogOptions LogOptions(TestClock clock) => new() { TimeProvider = clock, MaintenanceInterval = null };

    private sealed record Written(long Offset, string Key, string? Value);

    /// <summary>Appends 90 records: 5 keys written once (so the first segment keeps records), then 8
    /// keys over and over, in batches of 1 to 3 (so compaction must rewrite batches where only some
    /// records survive, and empties whole middle segments), with tombstones for k3 (last, so it stays
    /// deleted) and k5 (then a new value). Then seals them all: the clock passes SegmentAge and a
    /// record with a key of its own starts a new active segment.</summary>
    private static async Task<List<Written>> AppendHistoryAsync(LogPartition p, TestClock clock)
    {
        var written = new List<Written>();
        var n = 0;
        while (n < 90)
        {
            var size = n % 4 == 0 ? 3 : 1;
            var batch = new List<(string Key, string? Value)>();
            for (var i = 0; i < size && n < 90; i++, n++)
            {
                var key = n < 5 ? $"u{n}" : $"k{n * 5 % 8}";
                string? value = key switch
                {
                    "k3" when n > 60 => null,
                    "k5" when n is > 40 and < 70 => null,
                    _ => $"{key}@{n}:" + new string('v', 60),
                };
                batch.Add((key, value));
            }
            var first = await p.AppendAsync(batch.Select(b => Record(b.Key, b.Value)).ToArray());
            written.AddRange(batch.Select((b, i) => new Written(first + i, b.Key, b.Value)));
        }
        clock.Advance(TimeSpan.FromHours(2));
        var sealAt = await p.AppendAsync(Record("seal", "s"));
        written.Add(new Written(sealAt, "seal", "s"));
        Assert.Equal(sealAt, p.Segments[^1].BaseOffset);
        Assert.True(p.SegmentCount >= 4, $"expected several sealed segments, found {p.SegmentCount}");
        return written;
    }

    /// <summary>The latest record per key among the sealed records, tombstones included unless dropped,
    /// plus the active segment untouched.</summary>
    private static List<Written> Expected(List<Written> written, long activeBase, bool dropTombstones)
    {
        var latest = written.Where(w => w.Offset < activeBase).GroupBy(w => w.Key).ToDictionary(g => g.Key, g => g.Max(w => w.Offset));
        return written.Where(w => w.Offset >= activeBase || (latest[w.Key] == w.Offset && !(dropTombstones && w.Value is null))).ToList();
    }

    private static void AssertHolds(LogPartition p, List<Written> expected, long end)
    {
        Assert.Equal(end, p.EndOffset);
        Assert.True(p.StartOffset <= expected[0].Offset);
        var records = ReadAll(p).Select(r => new Written(r.Offset, Text(r.Key)!, Text(r.Value))).ToList();
        Assert.Equal(expected, records);

        // Reading at any offset, including ones compaction removed, yields the next surviving record.
        for (var offset = p.StartOffset; offset < end; offset++)
        {
            var next = expected.First(w => w.Offset >= offset);
            var found = ReadAll(p, offset, 1).First();
            Assert.Equal(next.Offset, found.Offset);
        }
    }

    [Fact]
    public async Task Compaction_keeps_the_latest_value_per_key_at_its_original_offset_then_drops_expired_tombstones()
    {
        using var dir = new TempDirectory();
        var clock = new TestClock();
        List<Written> written;
        long end;
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions(clock)))
        {
            var p = log.GetOrCreateTopic("t", Options())[0];
            written = await AppendHistoryAsync(p, clock);
            var activeBase = p.Segments[^1].BaseOffset;
            end = p.EndOffset;
            var expected = Expected(written, activeBase, dropTombstones: false);
            Assert.Contains(expected, w => w.Key == "k3" && w.Value is null); // a tombstone is the latest for k3

            var segmentsBefore = p.SegmentCount;

            var report = await log.RunMaintenanceAsync();

            Assert.Equal(written.Count - expected.Count, report.RecordsCompacted);
            Assert.True(p.SegmentCount < segmentsBefore, "segments left empty by compaction are removed");
            Assert.Equal(0, p.StartOffset);
            AssertHolds(p, expected, end);
            Assert.Equal(0, (await log.RunMaintenanceAsync()).RecordsCompacted); // already compact
        }
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions(clock)))
        {
            var p = log.GetOrCreateTopic("t")[0];
            var activeBase = p.Segments[^1].BaseOffset;
            AssertHolds(p, Expected(written, activeBase, dropTombstones: false), end);

            clock.Advance(TombstoneRetention + TimeSpan.FromMinutes(1));
            var report = await log.RunMaintenanceAsync();

            var expected = Expected(written, activeBase, dropTombstones: true);
            Assert.DoesNotContain(expected, w => w.Key == "k3");
            Assert.Equal(Expected(written, activeBase, dropTombstones: false).Count - expected.Count, report.RecordsCompacted);
            AssertHolds(p, expected, end);
        }
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions(clock)))
        {
            var p = log.GetOrCreateTopic("t")[0];
            AssertHolds(p, Expected(written, p.Segments[^1].BaseOffset, dropTombstones: true), end);
            Assert.Equal(end, await p.AppendAsync(Record("k1", "after reopen")));
        }
    }

    [Fact]
    public async Task Compacted_batches_keep_their_offset_span_and_pass_validation()
    {
        using var dir = new TempDirectory();
        var clock = new TestClock();
        await using var log = EmbeddedLog.Open(dir.Path, LogOptions(clock));
        var p = log.GetOrCreateTopic("t", Options())[0];
        await AppendHistoryAsync(p, clock);
        var spansBefore = p.Segments.SelectMany(s => BatchesIn(s.LogPath)).Select(b => (b.Header.BaseOffset, b.Header.NextOffset)).ToHashSet();

        await log.RunMaintenanceAsync();

        var after = p.Segments.SelectMany(s => BatchesIn(s.LogPath)).ToList();
        Assert.Contains(after, b => b.Header.RecordCount < b.Header.LastOffsetDelta + 1); // some batch lost records but kept its span
        foreach (var b in after)
        {
            Assert.Contains((b.Header.BaseOffset, b.Header.NextOffset), spansBefore);
            var bytes = File.ReadAllBytes(b.File).AsSpan((int)b.Position, b.Header.TotalSize);
            Assert.Null(RecordBatch.Validate(bytes, 1024));
        }
    }

    [Fact]
    public async Task A_compacted_topic_refuses_records_without_a_key()
    {
        using var dir = new TempDirectory();
        await using var log = EmbeddedLog.Open(dir.Path, LogOptions(new TestClock()));
        var p = log.GetOrCreateTopic("compacted", Options())[0];

        var single = await Assert.ThrowsAsync<ArgumentException>(async () => await p.AppendAsync(Record(null, "v")));
        var many = await Assert.ThrowsAsync<ArgumentException>(async () => await p.AppendAsync([Record("k", "v"), Record(null, "v")]));
        var batch = await Assert.ThrowsAsync<ArgumentException>(async () =>
            await p.AppendBatchAsync(RecordBatchBuilder.Encode(0, [Record("k", "v"), Record(null, "v")], 0)));

        Assert.All(new[] { single, many, batch }, e =>
        {
            Assert.Equal("Key", e.ParamName);
            Assert.Contains("'compacted'", e.Message, StringComparison.Ordinal);
        });
        Assert.Equal(0, p.EndOffset);
        Assert.Equal(0, await p.AppendAsync(Record("k", null))); // a tombstone with a key is fine
    }

    [Fact]
    public async Task Compaction_leaves_the_active_segment_alone()
    {
        using var dir = new TempDirectory();
        var clock = new TestClock();
        await using var log = EmbeddedLog.Open(dir.Path, LogOptions(clock));
        var p = log.GetOrCreateTopic("t", Options())[0];
        for (var i = 0; i < 10; i++) await p.AppendAsync(Record("same", $"v{i}"));
        Assert.Equal(1, p.SegmentCount);

        Assert.Equal(0, (await log.RunMaintenanceAsync()).RecordsCompacted);

        Assert.Equal(10, ReadAll(p).Count);
    }

    [Fact]
    public async Task Compaction_never_loses_the_latest_record_of_a_key_whatever_the_history_and_key_budget()
    {
        // Histories over a few keys with tombstones, and a CompactionMaxKeys that may be too small to
        // map every sealed segment in one pass (then only a prefix of segments is compacted).
        var genHistory = Gen.Select(Gen.Int[0, 9], Gen.Int[0, 9], Gen.Int[1, 3]).Array[30, 120];
        await Gen.Select(genHistory, Gen.Int[2, 12]).SampleAsync(async (history, maxKeys) =>
        {
            using var dir = new TempDirectory();
            var clock = new TestClock();
            var options = Options();
            options.CompactionMaxKeys = maxKeys;
            options.Durability = DurabilityMode.AckOnWrite;
            await using var log = EmbeddedLog.Open(dir.Path, LogOptions(clock));
            var p = log.GetOrCreateTopic("t", options)[0];
            var written = new List<Written>();
            foreach (var (key, value, count) in history)
            {
                var records = Enumerable.Range(0, count).Select(i => (Key: $"k{(key + i) % 10}", Value: value == 0 ? null : $"v{written.Count + i}:" + new string('x', 40))).ToArray();
                var first = await p.AppendAsync(records.Select(r => Record(r.Key, r.Value, clock.NowMs + written.Count + r.Key.Length)).ToArray());
                written.AddRange(records.Select((r, i) => new Written(first + i, r.Key, r.Value)));
            }
            var activeBase = p.Segments[^1].BaseOffset;
            var end = p.EndOffset;

            await log.RunMaintenanceAsync();

            var survivors = ReadAll(p).Select(r => new Written(r.Offset, Text(r.Key)!, Text(r.Value))).ToList();
            Assert.Equal(end, p.EndOffset);
            Assert.Subset(written.ToHashSet(), survivors.ToHashSet()); // same offset, key and value as written
            Assert.Equal(survivors.OrderBy(w => w.Offset), survivors);
            foreach (var latest in written.GroupBy(w => w.Key).Select(g => g.Last()))
                Assert.Contains(latest, survivors); // tombstones too: TombstoneRetention has not passed
            Assert.All(written.Where(w => w.Offset >= activeBase), w => Assert.Contains(w, survivors));
            for (var offset = p.StartOffset; offset < end; offset++)
                Assert.Equal(survivors.First(w => w.Offset >= offset).Offset, ReadAll(p, offset, 1).First().Offset);
            var times = ReadAll(p).Select(r => (r.Offset, r.TimestampMs)).ToList();
            Segments.IndexTests.AssertTimestampLookups(p, times);

            if (maxKeys >= 10)
            {
                // With room for every key, one pass leaves exactly the latest record per key in the sealed segments.
                Assert.Equal(Expected(written, activeBase, dropTombstones: false), survivors);
            }
        }, iter: 15, threads: 1);
    }

    [Fact]
    public async Task Reading_in_a_compacted_gap_before_an_empty_active_segment_moves_on_to_the_end_offset()
    {
        using var dir = new TempDirectory();
        var clock = new TestClock();
        string partition;
        long end;
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions(clock)))
        {
            var p = log.GetOrCreateTopic("t", Options())[0];
            for (var i = 0; i < 30; i++) await p.AppendAsync(Record($"k{i}", new string('v', 100)));
            await p.AppendAsync(Record("gone", null)); // a tombstone, last in the log
            partition = p.Directory;
            end = p.EndOffset;
        }
        // A crash right after a roll leaves an empty active segment behind the sealed ones.
        File.Create(Path.Combine(partition, Segment.FileName(end))).Dispose();
        clock.Advance(TombstoneRetention + TimeSpan.FromHours(1));
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions(clock)))
        {
            var p = log.GetOrCreateTopic("t")[0];
            Assert.Equal(1, (await log.RunMaintenanceAsync()).RecordsCompacted); // the expired tombstone

            var read = p.Read(end - 1);

            Assert.True(read.IsEmpty);
            Assert.Equal(end, read.NextOffset); // not end - 1: a follower must not spin on the gap
            Assert.Equal(30, ReadAll(p).Count);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await using var follower = p.ReadRecordsAsync(end - 1, cts.Token).GetAsyncEnumerator();
            var next = follower.MoveNextAsync().AsTask();
            await p.AppendAsync(Record("k", "after the gap"));
            Assert.True(await next.Within(10));
            Assert.Equal(end, follower.Current.Offset);
        }
    }

    [Fact]
    public async Task Compaction_keeps_the_start_offset_when_it_empties_the_first_segments()
    {
        using var dir = new TempDirectory();
        var clock = new TestClock();
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions(clock)))
        {
            var p = log.GetOrCreateTopic("t", Options())[0];
            for (var i = 0; i < 40; i++) await p.AppendAsync(Record("same", $"v{i}:" + new string('x', 100)));
            clock.Advance(TimeSpan.FromHours(2));
            await p.AppendAsync(Record("seal", "s"));
            Assert.True(p.SegmentCount >= 4);

            Assert.Equal(39, (await log.RunMaintenanceAsync()).RecordsCompacted);

            // As in Kafka, compaction never moves the log start: a consumer anywhere in the gap reads on.
            Assert.Equal(0, p.StartOffset);
            Assert.Equal([39L, 40L], ReadAll(p, 0).Select(r => r.Offset));
            Assert.Equal(39, ReadAll(p, 5, 1).First().Offset);
        }
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions(clock)))
        {
            var p = log.GetOrCreateTopic("t")[0];
            Assert.Null(p.Recovery.Corruption);
            Assert.Equal(0, p.StartOffset);
            Assert.Equal([39L, 40L], ReadAll(p, 0).Select(r => r.Offset));
        }
    }

    [Fact]
    public async Task A_follower_sees_the_latest_value_of_every_key_while_compaction_runs_under_appends()
    {
        using var dir = new TempDirectory();
        var clock = new TestClock();
        await using var log = EmbeddedLog.Open(dir.Path, LogOptions(clock));
        var options = Options();
        options.SegmentBytes = 1024;
        options.Durability = DurabilityMode.AckOnWrite; // keeps appends fast; compaction still syncs its rewrites
        var p = log.GetOrCreateTopic("t", options)[0];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        var appending = Task.Run(async () =>
        {
            for (var i = 0; i < 600; i++) await p.AppendAsync(Record($"k{i % 13}", $"{i}:" + new string('x', 40)), cts.Token);
        });
        var compacting = Task.Run(async () =>
        {
            long removed = 0;
            for (var passes = 0; !appending.IsCompleted || passes < 3; passes++)
                removed += (await log.RunMaintenanceAsync(cts.Token)).RecordsCompacted;
            return removed;
        });
        var latestSeen = new Dictionary<string, int>();
        var follower = Task.Run(async () =>
        {
            long last = -1;
            await foreach (var r in p.ReadRecordsAsync(0, cts.Token))
            {
                Assert.True(r.Offset > last, $"offset {r.Offset} after {last}");
                last = r.Offset;
                var value = int.Parse(Text(r.Value)!.Split(':')[0]);
                Assert.Equal($"k{value % 13}", Text(r.Key)); // the record at an offset is the one appended there
                Assert.Equal(value, r.Offset);
                latestSeen[Text(r.Key)!] = value;
                if (r.Offset == 599) break;
            }
        });

        await Task.WhenAll(appending, compacting, follower).Within();

        Assert.True(await compacting > 0);
        Assert.Equal(Enumerable.Range(587, 13).ToDictionary(i => $"k{i % 13}", i => i), latestSeen);
        Assert.Equal(Enumerable.Range(587, 13).Select(i => (long)i), ReadAll(p).Select(r => r.Offset).Where(o => o >= 587));
    }
}
