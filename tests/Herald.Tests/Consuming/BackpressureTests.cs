using System.Diagnostics;
using System.Globalization;
using System.Text;
using Herald.Embedded;
using Herald.Log;
using Herald.Tests.Kit;
using Xunit.Abstractions;

namespace Herald.Tests.Consuming;

public sealed record Tick(int N, string? Pad = null);

/// <summary>Tests that measure the process's managed heap run alone: other tests' hosts would
/// allocate into the same heap.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MemoryMeasuringCollection
{
    public const string Name = "Herald.Tests memory-measuring";
}

[Collection(MemoryMeasuringCollection.Name)]
public class BackpressureTests(ITestOutputHelper output)
{
    private const int Partitions = 2;
    private const int Keys = 256;
    private const int MaxInFlight = 16;

    [Fact]
    public async Task A_blocked_handler_holds_fetched_records_to_PrefetchRecords_and_memory_stays_flat_over_a_million_record_backlog()
    {
        // ~160 bytes stored per record; the record limit binds (Herald estimates ~310 bytes a record).
        var run = await RunAsync(backlog: 1_000_000, padding: 0, prefetchRecords: 100, prefetchBytes: 1024 * 1024);
        Assert.Equal(100, run.FetchedWhileBlocked);
        Assert.InRange(run.MostOutstandingRecords, 1, 100);
        Assert.InRange(run.MostOutstandingBytes, 1, 1024 * 1024 + run.LargestRecord);
        // Bounded by the prefetch and a read buffer per partition, not by the backlog.
        var bound = Math.Min(32L * 1024 * 1024, run.BacklogBytes / 8);
        Assert.True(run.BlockedHeapGrowth < bound, $"heap grew {run.BlockedHeapGrowth / 1024} KiB while blocked over a {run.BacklogBytes / 1024} KiB backlog (bound {bound / 1024} KiB)");
        Assert.True(run.PeakHeapGrowth < bound, $"heap grew {run.PeakHeapGrowth / 1024} KiB while draining a {run.BacklogBytes / 1024} KiB backlog (bound {bound / 1024} KiB)");
    }

    [Fact]
    public async Task A_slow_handler_holds_fetched_bytes_to_PrefetchBytes()
    {
        // ~1 KiB records and the smallest byte budget: the byte limit binds (about 60 records).
        const long prefetchBytes = 64 * 1024;
        var run = await RunAsync(backlog: 50_000, padding: 800, prefetchRecords: 100_000, prefetchBytes: prefetchBytes);
        // "About" the limit: a fetch may end with the record that crosses it, never more.
        Assert.InRange(run.FetchedBytesWhileBlocked, prefetchBytes, prefetchBytes + run.LargestRecord);
        Assert.InRange(run.MostOutstandingBytes, 1, prefetchBytes + run.LargestRecord);
    }

    private sealed record Run(
        long BacklogBytes,
        int LargestRecord,
        long FetchedWhileBlocked,
        long FetchedBytesWhileBlocked,
        long MostOutstandingRecords,
        long MostOutstandingBytes,
        long BlockedHeapGrowth,
        long PeakHeapGrowth);

    /// <summary>Appends a backlog straight to the log, starts a subscription whose handler blocks,
    /// observes what is fetched, then releases the handler and waits for every record to be handled
    /// exactly once. "Outstanding" is fetched minus handled, measured right after each fetch: a
    /// lower bound of what is fetched and not yet committable, since a record finishes only after
    /// its handler returns.</summary>
    private async Task<Run> RunAsync(int backlog, int padding, int prefetchRecords, long prefetchBytes)
    {
        using var dir = new TempDirectory("backpressure");
        await using var log = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        var topic = log.GetOrCreateTopic("ticks", new TopicOptions { Partitions = Partitions, Durability = DurabilityMode.AckOnWrite });
        var clock = Stopwatch.StartNew();
        await AppendBacklogAsync(topic, backlog, padding);
        var backlogBytes = topic.Partitions.Sum(p => p.SizeBytes);
        output.WriteLine($"appended {backlog:N0} records ({backlogBytes / 1024} KiB) in {clock.ElapsedMilliseconds} ms");

        var transport = new ObservingTransport(new EmbeddedTransport(log, ownsLog: false)) { TrackSizes = true };
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var open = false;
        var started = 0;
        long handled = 0, handledBytes = 0;
        var duplicates = 0;
        var seen = new bool[backlog];
        long mostRecords = 0, mostBytes = 0, largest = 0;
        transport.AfterFetch = () =>
        {
            Max(ref mostRecords, transport.Fetched("ticks") - Interlocked.Read(ref handled));
            Max(ref mostBytes, transport.FetchedBytes("ticks") - Interlocked.Read(ref handledBytes));
        };

        var baseline = GC.GetTotalMemory(forceFullCollection: true);
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseTransport(_ => transport);
            h.Event<Tick>("ticks");
            h.Subscribe("meters", s =>
            {
                s.Options.PrefetchRecords = prefetchRecords;
                s.Options.PrefetchBytes = prefetchBytes;
                s.Options.MaxInFlight = MaxInFlight;
                s.Handle<Tick>(async (e, ctx, ct) =>
                {
                    if (!Volatile.Read(ref open))
                    {
                        Interlocked.Increment(ref started);
                        await release.Task.WaitAsync(ct);
                    }
                    if (seen[e.N]) Interlocked.Increment(ref duplicates);
                    seen[e.N] = true;
                    var size = transport.TakeSize("ticks", ctx.Envelope.Partition, ctx.Envelope.Offset);
                    Max(ref largest, size);
                    Interlocked.Add(ref handledBytes, size);
                    Interlocked.Increment(ref handled);
                });
            });
        });
        try
        {
            await TestHost.WaitUntilAsync(() => Volatile.Read(ref started) == MaxInFlight, TimeSpan.FromSeconds(10), $"{MaxInFlight} handlers waiting");
            // An observation window, not a wait for a condition: a fetcher that ignored its budget
            // would go on fetching from the backlog meanwhile.
            await Task.Delay(300);
            var fetchedWhileBlocked = transport.Fetched("ticks");
            var fetchedBytesWhileBlocked = transport.FetchedBytes("ticks");
            Assert.Equal(MaxInFlight, Volatile.Read(ref started));
            var blockedGrowth = GC.GetTotalMemory(forceFullCollection: true) - baseline;
            output.WriteLine($"blocked: {fetchedWhileBlocked} records ({fetchedBytesWhileBlocked} bytes) fetched, {started} handlers waiting, heap +{blockedGrowth / 1024} KiB");

            clock.Restart();
            Volatile.Write(ref open, true);
            release.SetResult();
            var peakGrowth = blockedGrowth;
            var nextSample = backlog / 4;
            await TestHost.WaitUntilAsync(() =>
            {
                var n = Interlocked.Read(ref handled);
                if (n >= nextSample && n < backlog)
                {
                    peakGrowth = Math.Max(peakGrowth, GC.GetTotalMemory(forceFullCollection: true) - baseline);
                    nextSample += backlog / 4;
                }
                return n >= backlog;
            }, TimeSpan.FromSeconds(30), $"{backlog:N0} handled (have {Interlocked.Read(ref handled):N0})");
            output.WriteLine($"handled {backlog:N0} in {clock.ElapsedMilliseconds} ms; peak heap +{peakGrowth / 1024} KiB; most outstanding {mostRecords} records, {mostBytes} bytes; largest record {largest} bytes");
            await host.StopAsync();

            Assert.Equal(0, duplicates);
            Assert.Equal(backlog, Interlocked.Read(ref handled));
            return new Run(backlogBytes, (int)largest, fetchedWhileBlocked, fetchedBytesWhileBlocked, mostRecords, mostBytes, blockedGrowth, peakGrowth);
        }
        finally
        {
            release.TrySetResult();
            await host.DisposeHostAsync();
        }
    }

    private static void Max(ref long most, long value)
    {
        long seen;
        while (value > (seen = Interlocked.Read(ref most)) && Interlocked.CompareExchange(ref most, value, seen) != seen) { }
    }

    /// <summary>Appends the backlog as a publisher would have written it: CloudEvents headers in
    /// binary mode, the key's murmur2 partition, JSON values. Both partitions are written at once.</summary>
    private static async Task AppendBacklogAsync(LogTopic topic, int backlog, int padding)
    {
        var source = "urn:test:meters"u8.ToArray();
        var specVersion = "1.0"u8.ToArray();
        var type = "Tick"u8.ToArray();
        var contentType = "application/json"u8.ToArray();
        var time = Encoding.UTF8.GetBytes(DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture));
        var pad = new string('x', padding);
        var keys = new byte[Keys][];
        var partitionOf = new int[Keys];
        for (var k = 0; k < Keys; k++)
        {
            keys[k] = Encoding.UTF8.GetBytes($"m{k}");
            partitionOf[k] = Herald.Transport.Partitioner.ForKey(keys[k], Partitions);
        }
        await Task.WhenAll(Enumerable.Range(0, Partitions).Select(p => Task.Run(async () =>
        {
            const int chunk = 8192;
            var pending = new List<NewRecord>(chunk);
            for (var n = 0; n < backlog; n++)
            {
                var k = n % Keys;
                if (partitionOf[k] != p) continue;
                var value = padding == 0 ? $"{{\"n\":{n}}}" : $"{{\"n\":{n},\"pad\":\"{pad}\"}}";
                pending.Add(new NewRecord(keys[k], Encoding.UTF8.GetBytes(value),
                [
                    new LogHeader(HeaderNames.Id, Encoding.UTF8.GetBytes(n.ToString(CultureInfo.InvariantCulture))),
                    new LogHeader(HeaderNames.Source, source),
                    new LogHeader(HeaderNames.SpecVersion, specVersion),
                    new LogHeader(HeaderNames.Type, type),
                    new LogHeader(HeaderNames.Time, time),
                    new LogHeader(HeaderNames.ContentType, contentType),
                ]));
                if (pending.Count == chunk)
                {
                    await topic.Partitions[p].AppendAsync(pending);
                    pending = new List<NewRecord>(chunk);
                }
            }
            if (pending.Count > 0) await topic.Partitions[p].AppendAsync(pending);
        })));
    }
}
