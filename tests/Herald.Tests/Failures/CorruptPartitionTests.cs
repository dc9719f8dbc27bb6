using System.Buffers.Binary;
using Herald.Hosting;
using Herald.Internal.Pipeline;
using Herald.Log;
using Herald.Tests.Kit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Herald.Tests.Failures;

/// <summary>A subscription over a topic one of whose partitions has a damaged batch on disk: the
/// damage is reported, and records of the healthy partition are not lost with it.</summary>
public class CorruptPartitionTests
{
    private const string Group = "g";
    private const int BatchHeaderSize = 61; // RecordBatch v2, as Kafka stores it

    /// <summary>Two partitions of small segments (a damaged sealed segment is found by the read
    /// that meets it, not when the log opens).</summary>
    private static void Wiring(HeraldBuilder h)
    {
        h.Topic(FailureHost.Topic, 2, o =>
        {
            o.Durability = DurabilityMode.AckOnWrite;
            o.MaxBatchBytes = 1024;
            o.SegmentBytes = 2048;
        });
        h.Event<Charge>(FailureHost.Topic, c => c.Account);
    }

    private static string Account(int partition) =>
        Enumerable.Range(0, 100).Select(i => $"acct-{i}").First(a => FailureHost.PartitionOf(a, 2) == partition);

    private static void FlipByte(string path, long position)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        file.Position = position;
        var b = file.ReadByte();
        file.Position = position;
        file.WriteByte((byte)~b);
    }

    [Fact]
    public async Task Records_of_a_healthy_partition_fetched_together_with_a_damaged_one_are_handled_and_the_damage_is_reported()
    {
        using var dir = new TempDirectory("corrupt");
        var healthy = Account(0);
        var damaged = Account(1);
        string damagedFile;
        await using (var producer = await FailureHost.StartAsync(dir.Path, h => { h.UseEmbedded(dir.Path, Hosts.Fast); Wiring(h); }))
        {
            // Few enough records in partition 0 to come in one read with the fetch that meets the
            // damage (A_damaged_partition_does_not_starve_the_healthy_partitions_of_the_same_consumer
            // in EmbeddedConsumerTests covers more).
            for (var seq = 0; seq < 3; seq++) await producer.PublishAsync(healthy, seq);
            for (var seq = 0; seq < 30; seq++) await producer.PublishAsync(damaged, seq);
            var log = ((Herald.Embedded.EmbeddedTransport)producer.Transport).Log;
            log.TryGetTopic(FailureHost.Topic, out var topic);
            var files = Directory.GetFiles(topic!.Partitions[1].Directory, "*.log").Order(StringComparer.Ordinal).ToArray();
            Assert.True(files.Length >= 3, $"expected partition 1 to have sealed segments, found {files.Length} segment files");
            Assert.Equal(3, topic.Partitions[0].EndOffset);
            damagedFile = files[0];
        }
        // A byte inside the records of partition 1's first batch: no record of that partition can be read.
        var data = File.ReadAllBytes(damagedFile);
        var batchSize = 12 + BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(8));
        FlipByte(damagedFile, BatchHeaderSize + (batchSize - BatchHeaderSize) / 2);

        var calls = new CallLog();
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseEmbedded(dir.Path, Hosts.Fast);
            h.Options.ShutdownTimeout = TimeSpan.FromSeconds(5);
            Wiring(h);
            h.Subscribe(Group, s =>
            {
                Fast.Retry(0)(s.Options);
                s.Handle<Charge>((c, ctx, ct) => calls.Handle(c, ctx));
            });
        });
        var runner = host.Services.GetServices<IHostedService>().OfType<HeraldHostedService>().Single().Runners[0];
        try
        {
            await Eventually.WaitAsync(() => calls.HandledSeqs(healthy).Count == 3 && runner.LastError is not null, TimeSpan.FromSeconds(20),
                () => $"the healthy partition's records handled and the damage reported (calls: {calls}; last error: {runner.LastError?.Message ?? "none"})");

            Assert.Equal([0, 1, 2], calls.HandledSeqs(healthy));
            Assert.Empty(calls.Of(damaged));
            var e = Assert.IsType<LogCorruptionException>(runner.LastError);
            Assert.Equal(damagedFile, e.File);
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }

        // What the group committed: all of partition 0, nothing past the damage in partition 1.
        await using var reopened = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        Assert.Equal(3, reopened.Offsets.GetCommitted(Group, FailureHost.Topic, 0));
        Assert.True(reopened.Offsets.GetCommitted(Group, FailureHost.Topic, 1) is null or 0,
            $"partition 1 committed {reopened.Offsets.GetCommitted(Group, FailureHost.Topic, 1)}, past its unreadable first record");
    }
}
