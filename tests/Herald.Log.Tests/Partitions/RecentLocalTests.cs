using Herald.Log.Internal;
using Herald.Log.Partitions;
using Herald.Log.Tests.Faults;
using static Herald.Log.Tests.LogTestKit;

namespace Herald.Log.Tests.Partitions;

/// <summary><see cref="NewRecord.Local"/> and <see cref="LogPartition.RecentLocal"/>: the
/// in-memory value of a recent durable record, for readers in the same process.</summary>
public class RecentLocalTests
{
    private sealed record Value(long Offset);

    private static NewRecord WithLocal(string value, object local) => Record(null, value) with { Local = local };

    [Fact]
    public async Task A_durable_records_local_value_is_given_to_readers_until_newer_records_push_it_out_of_the_ring()
    {
        using var dir = new TempDirectory("local");
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null, RecentLocalValues = 4 });
        var p = log.GetOrCreateTopic("t")[0];
        var values = new List<object>();
        for (var i = 0; i < 6; i++)
        {
            var v = new Value(i);
            values.Add(v);
            Assert.Equal(i, await p.AppendAsync(WithLocal($"v{i}", v)));
        }
        await p.AppendAsync(Record(null, "plain")); // offset 6, no local value
        Assert.Null(p.RecentLocal(0)); // pushed out by offset 4
        Assert.Null(p.RecentLocal(1));
        Assert.Same(values[2], p.RecentLocal(2)); // offset 6 has no value, so its slot still holds offset 2's
        Assert.Same(values[3], p.RecentLocal(3));
        Assert.Same(values[5], p.RecentLocal(5));
        Assert.Null(p.RecentLocal(6));
        Assert.Null(p.RecentLocal(7)); // not written
        // Stored bytes are unaffected: the value is never written.
        Assert.Equal(["v0", "v1", "v2", "v3", "v4", "v5", "plain"], ReadAll(p).Select(r => Text(r.Value)));
    }

    [Fact]
    public async Task Records_appended_together_each_keep_their_own_local_value()
    {
        using var dir = new TempDirectory("local-many");
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        var p = log.GetOrCreateTopic("t")[0];
        await p.AppendAsync(Record(null, "first"));
        var values = Enumerable.Range(0, 5).Select(i => new Value(i + 1)).ToArray();
        Assert.Equal(1, await p.AppendAsync(values.Select(v => WithLocal("m", v)).ToList()));
        for (var i = 0; i < 5; i++) Assert.Same(values[i], p.RecentLocal(i + 1));
    }

    [Fact]
    public async Task With_RecentLocalValues_zero_no_value_is_kept()
    {
        using var dir = new TempDirectory("local-none");
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null, RecentLocalValues = 0 });
        var p = log.GetOrCreateTopic("t")[0];
        await p.AppendAsync(WithLocal("v", new Value(0)));
        Assert.Null(p.RecentLocal(0));
    }

    [Fact]
    public async Task A_failed_append_leaves_no_local_value_behind_and_the_offset_it_would_have_had_gets_the_next_records_value()
    {
        using var dir = new TempDirectory("local-fault");
        var fs = new FaultInjectingFileSystem(PosixFileSystem.Instance);
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null }, fs);
        var p = log.GetOrCreateTopic("t")[0];
        var kept = new Value(0);
        await p.AppendAsync(WithLocal("kept", kept));
        fs.FailSync(1);
        await Assert.ThrowsAsync<LogWriteFailedException>(async () => await p.AppendAsync(WithLocal("lost", new Value(-1))));
        Assert.Null(p.RecentLocal(1)); // never durable, never readable
        var next = new Value(1);
        Assert.Equal(1, await p.AppendAsync(WithLocal("next", next))); // the offset is given again after the reopen
        Assert.Same(next, p.RecentLocal(1));
        Assert.Same(kept, p.RecentLocal(0));
    }

    [Fact]
    public void A_reader_racing_the_writer_gets_the_value_of_the_offset_it_asks_for_or_nothing()
    {
        var ring = new LocalValues(64);
        long written = -1;
        var wrong = 0;
        var hits = 0L;
        var until = DateTime.UtcNow.AddSeconds(1);
        var writer = new Thread(() =>
        {
            for (long o = 0; DateTime.UtcNow < until; o++)
            {
                ring.Set(o, new Value(o));
                Volatile.Write(ref written, o);
            }
        });
        var readers = Enumerable.Range(0, 2).Select(seed => new Thread(() =>
        {
            var random = new Random(seed);
            while (DateTime.UtcNow < until)
            {
                var end = Volatile.Read(ref written);
                if (end < 0) continue;
                // Offsets just inside and just outside the ring, where slots are being overwritten.
                var o = Math.Max(0, end - random.Next(0, 80));
                if (ring.Get(o) is Value v)
                {
                    if (v.Offset != o) Interlocked.Increment(ref wrong);
                    else Interlocked.Increment(ref hits);
                }
            }
        })).ToList();
        writer.Start();
        readers.ForEach(r => r.Start());
        writer.Join();
        readers.ForEach(r => r.Join());
        Assert.Equal(0, wrong);
        Assert.True(hits > 1000, $"only {hits} hits: the race was hardly exercised");
    }
}
