using static Herald.Log.Tests.LogTestKit;

namespace Herald.Log.Tests.Partitions;

/// <summary>The group commit delay gathers appends only while they keep coming: it must never hold
/// appenders that wait for their acknowledgements, never lose or reorder an append, and never keep
/// a closing partition waiting.</summary>
public class GroupCommitDelayTests
{
    // The longest delay the options allow, from the first group on: a gather that waited it out
    // where it must not would show as a timed-out gather (and a slow test).
    private static EmbeddedLogOptions Eager() => new()
    {
        MaintenanceInterval = null,
        GroupCommitDelay = TimeSpan.FromMilliseconds(100),
        GroupCommitDelayMinAppends = 1,
    };

    [Fact]
    public async Task An_appender_that_waits_for_each_acknowledgement_is_never_held_for_the_delay()
    {
        using var dir = new TempDirectory();
        await using var log = EmbeddedLog.Open(dir.Path, Eager());
        var p = log.GetOrCreateTopic("t", new TopicOptions())[0];

        for (var i = 0; i < 50; i++) Assert.Equal(i, await p.AppendAsync(Record("k", $"v{i}")));

        var (filled, idle, timedOut) = p.GatherEnds;
        Assert.Equal(0, timedOut);
        Assert.Equal(0, filled);
        Assert.True(idle >= 49, $"each group of one was followed by a gather that ended when nothing came (idle {idle})");
    }

    [Fact]
    public async Task Concurrent_appenders_under_the_delay_get_every_record_once_in_order_per_appender()
    {
        const int Appenders = 4, PerAppender = 5_000, Window = 256;
        using var dir = new TempDirectory();
        await using var log = EmbeddedLog.Open(dir.Path, Eager());
        var p = log.GetOrCreateTopic("t", new TopicOptions())[0];

        var offsets = await Task.WhenAll(Enumerable.Range(0, Appenders).Select(a => Task.Run(async () =>
        {
            var pending = new Queue<Task<long>>();
            var acked = new List<long>(PerAppender);
            for (var i = 0; i < PerAppender; i++)
            {
                if (pending.Count == Window) acked.Add(await pending.Dequeue());
                pending.Enqueue(p.AppendAsync(Record($"a{a}", $"{a}:{i}")).AsTask());
            }
            while (pending.Count > 0) acked.Add(await pending.Dequeue());
            return acked;
        })));

        Assert.Equal(Appenders * PerAppender, p.EndOffset);
        var all = offsets.SelectMany(o => o).ToList();
        Assert.Equal(all.Count, all.Distinct().Count());
        var records = ReadAll(p);
        for (var a = 0; a < Appenders; a++)
        {
            // Each appender's acknowledged offsets rise, and its records are stored in its own order.
            Assert.True(offsets[a].SequenceEqual(offsets[a].Order()), $"appender {a}'s offsets do not rise");
            var mine = records.Where(r => Text(r.Key) == $"a{a}").Select(r => Text(r.Value)).ToList();
            Assert.Equal(Enumerable.Range(0, PerAppender).Select(i => $"{a}:{i}"), mine);
        }
        var (filled, idle, timedOut) = p.GatherEnds;
        Assert.True(filled + idle + timedOut > 0, "the delay never engaged: the test shows nothing");
    }

    [Fact]
    public async Task Closing_ends_a_gather_and_writes_what_was_gathered()
    {
        using var dir = new TempDirectory();
        var log = EmbeddedLog.Open(dir.Path, Eager());
        var p = log.GetOrCreateTopic("t", new TopicOptions())[0];
        using var stop = new CancellationTokenSource();
        var acknowledged = 0L;
        // A producer that keeps appends flowing, so the writer keeps gathering.
        var producer = Task.Run(async () =>
        {
            var pending = new Queue<Task<long>>();
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    if (pending.Count == 64) { await pending.Dequeue(); Interlocked.Increment(ref acknowledged); }
                    pending.Enqueue(p.AppendAsync(Record("k", "v")).AsTask());
                }
                while (pending.Count > 0) { await pending.Dequeue(); Interlocked.Increment(ref acknowledged); }
            }
            catch (LogClosedException)
            {
                // appends made after the close began are refused; those before it were written
            }
        });
        while (Interlocked.Read(ref acknowledged) < 2_000) await Task.Delay(5);

        await log.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        await stop.CancelAsync();
        await producer.WaitAsync(TimeSpan.FromSeconds(30));

        await using var reopened = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        Assert.True(reopened.GetOrCreateTopic("t", new TopicOptions())[0].EndOffset >= Interlocked.Read(ref acknowledged),
            "every acknowledged append is on disk after the close");
    }

    [Fact]
    public async Task Without_a_delay_the_writer_never_gathers()
    {
        using var dir = new TempDirectory();
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null, GroupCommitDelay = TimeSpan.Zero, GroupCommitDelayMinAppends = 1 });
        var p = log.GetOrCreateTopic("t", new TopicOptions())[0];

        await Task.WhenAll(Enumerable.Range(0, 2_000).Select(i => p.AppendAsync(Record("k", $"v{i}")).AsTask()));

        Assert.Equal((0L, 0L, 0L), p.GatherEnds);
    }
}
