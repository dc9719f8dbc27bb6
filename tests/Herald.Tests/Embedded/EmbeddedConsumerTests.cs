using System.Buffers.Binary;
using System.Text;
using Herald.Embedded;
using Herald.Log;
using Herald.Transport;

namespace Herald.Tests.Embedded;

/// <summary>The embedded consumer over a log whose files were damaged, or compacted, on disk: each
/// test writes a log, closes it, edits or compacts it, and consumes it through
/// <see cref="EmbeddedTransport.CreateConsumer"/>.</summary>
public class EmbeddedConsumerTests
{
    private const string Topic = "events";
    private const string Group = "g";
    private const int BatchHeaderSize = 61; // RecordBatch v2, as Kafka stores it
    private static readonly EmbeddedLogOptions LogOptions = new() { MaintenanceInterval = null };

    /// <summary>Small segments, so that a partition of a few dozen records has sealed segments
    /// (a damaged sealed segment is found by the read that meets it, not at open).</summary>
    private static TopicOptions SmallSegments(int partitions, CleanupPolicy cleanup = CleanupPolicy.Delete) => new()
    {
        Partitions = partitions,
        Durability = DurabilityMode.AckOnWrite,
        MaxBatchBytes = 1024,
        SegmentBytes = 2048,
        Cleanup = cleanup,
    };

    /// <summary>A record from strings; a null value is a tombstone (a byte[] that is null would
    /// convert to an empty value, not to a null one).</summary>
    private static NewRecord Record(string key, string? value, long timestampMs = -1) =>
        new(Encoding.UTF8.GetBytes(key), value is null ? default(ReadOnlyMemory<byte>?) : Encoding.UTF8.GetBytes(value), null, timestampMs);

    private static string Text(ReadOnlyMemory<byte>? bytes) => Encoding.UTF8.GetString(bytes!.Value.Span);

    /// <summary>Writes <paramref name="healthy"/> records to partition 0 and <paramref name="damaged"/>
    /// to partition 1 (one batch each, over several segments), closes the log, and flips a byte
    /// inside the records of partition 1's first batch: offset 0 of that partition cannot be read.
    /// Returns the damaged segment file.</summary>
    private static async Task<string> WriteAndDamageAsync(string directory, int healthy, int damaged)
    {
        string partition1;
        await using (var log = EmbeddedLog.Open(directory, LogOptions))
        {
            var topic = log.GetOrCreateTopic(Topic, SmallSegments(2));
            for (var i = 0; i < healthy; i++) await topic.Partitions[0].AppendAsync(Record($"h{i}", $"healthy-{i}"));
            for (var i = 0; i < damaged; i++) await topic.Partitions[1].AppendAsync(Record($"d{i}", $"damaged-{i}:" + new string('v', 150)));
            partition1 = topic.Partitions[1].Directory;
        }
        var files = Directory.GetFiles(partition1, "*.log").Order(StringComparer.Ordinal).ToArray();
        Assert.True(files.Length >= 3, $"expected partition 1 to have sealed segments, found {files.Length} segment files");
        var first = files[0];
        var data = File.ReadAllBytes(first);
        var batchSize = 12 + BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(8)); // base offset and length field, then the batch
        FlipByte(first, BatchHeaderSize + (batchSize - BatchHeaderSize) / 2);
        return first;
    }

    private static void FlipByte(string path, long position)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        file.Position = position;
        var b = file.ReadByte();
        file.Position = position;
        file.WriteByte((byte)~b);
    }

    private static List<(int Partition, long Offset)> Positions(List<TransportRecord> records) =>
        [.. records.Select(r => (r.Partition, r.Offset))];

    [Fact]
    public async Task A_fetch_that_meets_a_damaged_batch_hands_out_the_records_it_took_from_other_partitions()
    {
        using var dir = new TempDirectory("consumer");
        var damagedFile = await WriteAndDamageAsync(dir.Path, healthy: 5, damaged: 30);
        await using var log = EmbeddedLog.Open(dir.Path, LogOptions);
        Assert.Null(log.GetOrCreateTopic(Topic).Partitions[1].Recovery.Corruption); // a sealed segment: not scanned at open
        await using var transport = new EmbeddedTransport(log, ownsLog: false);
        await using var consumer = transport.CreateConsumer(new ConsumerSpec { Group = Group, Topics = [Topic] });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        // Partition 0 comes first in the round: its five records are taken, then partition 1's read fails.
        var first = new List<TransportRecord>();
        await consumer.FetchAsync(first, 100, 1 << 20, timeout.Token);

        Assert.Equal(new (int, long)[] { (0, 0), (0, 1), (0, 2), (0, 3), (0, 4) }, Positions(first));
        Assert.Equal(new[] { "healthy-0", "healthy-1", "healthy-2", "healthy-3", "healthy-4" }, first.Select(r => Text(r.Value)));

        // Partition 1's cursor did not move past the damage: the next fetch meets it again.
        var second = new List<TransportRecord>();
        var e = await Assert.ThrowsAsync<LogCorruptionException>(async () => await consumer.FetchAsync(second, 100, 1 << 20, timeout.Token));
        Assert.Equal(damagedFile, e.File);
        Assert.Empty(second);
    }

    [Fact]
    public async Task A_damaged_partition_does_not_starve_the_healthy_partitions_of_the_same_consumer()
    {
        using var dir = new TempDirectory("consumer");
        const int healthy = 40;
        await WriteAndDamageAsync(dir.Path, healthy, damaged: 30);
        await using var log = EmbeddedLog.Open(dir.Path, LogOptions);
        await using var transport = new EmbeddedTransport(log, ownsLog: false);
        await using var consumer = transport.CreateConsumer(new ConsumerSpec { Group = Group, Topics = [Topic] });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        // As the subscription's fetch loop does: a failed fetch is reported and tried again. Each
        // fetch takes at most 8 records, so partition 0 needs five fetches that return records.
        var received = new List<TransportRecord>();
        var failures = 0;
        for (var fetch = 0; fetch < 30 && received.Count < healthy; fetch++)
        {
            try
            {
                await consumer.FetchAsync(received, 8, 1 << 20, timeout.Token);
            }
            catch (LogCorruptionException)
            {
                failures++;
            }
        }

        Assert.True(failures > 0, "the damage in partition 1 was never reported");
        Assert.Equal(Enumerable.Range(0, healthy).Select(i => (0, (long)i)), Positions(received));
    }

    [Fact]
    public async Task A_consumer_positioned_in_a_gap_compaction_left_before_an_empty_active_segment_waits_at_the_end_offset_instead_of_spinning()
    {
        using var dir = new TempDirectory("consumer");
        string partitionDirectory;
        long tombstone;
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions))
        {
            var p = log.GetOrCreateTopic(Topic, SmallSegments(1, CleanupPolicy.Compact)).Partitions[0];
            for (var i = 0; i < 20; i++) await p.AppendAsync(Record($"k{i}", $"v{i}:" + new string('v', 100)));
            // The last record is a tombstone, old enough that compaction drops it (TombstoneRetention: a day).
            tombstone = await p.AppendAsync(Record("gone", null, DateTimeOffset.UtcNow.AddDays(-2).ToUnixTimeMilliseconds()));
            await log.Offsets.CommitAsync(Group, Topic, 0, tombstone); // the group handled everything before it
            partitionDirectory = p.Directory;
        }
        // A crash right after a roll (the new segment's file is created before its first batch is
        // written) leaves an empty active segment: the tombstone's segment is sealed, so compactable.
        var end = tombstone + 1;
        File.Create(Path.Combine(partitionDirectory, end.ToString("D20", System.Globalization.CultureInfo.InvariantCulture) + ".log")).Dispose();

        await using var reopened = EmbeddedLog.Open(dir.Path, LogOptions);
        var partition = reopened.GetOrCreateTopic(Topic).Partitions[0];
        Assert.Equal(end, partition.EndOffset);
        Assert.Equal(1, (await reopened.RunMaintenanceAsync()).RecordsCompacted);
        var gap = partition.Read(tombstone);
        Assert.True(gap.IsEmpty, "the tombstone's offset should be a gap now");
        Assert.Equal(end, gap.NextOffset);

        await using var transport = new EmbeddedTransport(reopened, ownsLog: false);
        await using var consumer = transport.CreateConsumer(new ConsumerSpec { Group = Group, Topics = [Topic] });
        Assert.Equal(tombstone, consumer.GetCommitted(new TopicPartition(Topic, 0)));
        using var stop = new CancellationTokenSource();
        var batch = new List<TransportRecord>();
        // The fetch is started on another thread and hands back its task when it returns to its
        // caller: one that waits for data returns at once; one that loops on the gap (reading it,
        // finding data "available" below the end offset, reading it again) never yields at all.
        var returned = new TaskCompletionSource<Task>(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = Task.Run(() => returned.SetResult(consumer.FetchAsync(batch, 100, 1 << 20, stop.Token).AsTask()));
        try
        {
            var first = await Task.WhenAny(returned.Task, Task.Delay(TimeSpan.FromSeconds(10)));
            Assert.True(first == returned.Task, "the fetch never returned to its caller: it loops on the gap");
            var fetch = await returned.Task;
            Assert.False(fetch.IsCompleted, "the fetch returned without a record to hand out");

            await partition.AppendAsync(Record("after", "after the gap"));
            await fetch.WaitAsync(TimeSpan.FromSeconds(10));

            var record = Assert.Single(batch);
            Assert.Equal(end, record.Offset);
            Assert.Equal("after the gap", Text(record.Value));
        }
        finally
        {
            // A fetch spinning on the gap stops only when cancelled: stop it before the log closes.
            stop.Cancel();
            await returned.Task.WaitAsync(TimeSpan.FromSeconds(10));
        }
    }
}
