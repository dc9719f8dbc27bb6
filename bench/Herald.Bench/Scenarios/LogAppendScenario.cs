using System.Diagnostics;
using Herald.Log;

namespace Herald.Bench.Scenarios;

/// <summary>log-append: durable (AckAfterFsync, group commit) appends to one partition from
/// several concurrent appenders, each keeping a window of appends in flight. Best of
/// <c>--rounds</c> rounds, each on a fresh directory.</summary>
public static class LogAppendScenario
{
    public static async Task RunAsync(BenchOptions options)
    {
        var count = options.Count ?? 1_000_000;
        var size = options.Size ?? 128;
        var appenders = options.Appenders ?? 4;
        var batch = options.Batch ?? 1;
        // The window counts AppendAsync calls in flight per appender: 1024 single records, or
        // enough lists of B records to keep about 1024 records in flight.
        var window = options.Window ?? Math.Max(4, 1024 / batch);
        var rounds = options.Rounds ?? 3;
        var workload = new AppendWorkload(size, batch);

        var rates = new List<double>();
        GcMeter? bestGc = null;
        string fileSystem = "unknown";
        for (var round = 0; round < rounds; round++)
        {
            using var dir = new BenchDirectory(options.Dir, "log-append");
            fileSystem = dir.FileSystem;
            await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
            var partition = log.GetOrCreateTopic("bench", new TopicOptions { Partitions = 1, Durability = DurabilityMode.AckAfterFsync })[0];

            var tasks = new Task[appenders];
            var gc = new GcMeter();
            var sw = Stopwatch.StartNew();
            for (var a = 0; a < appenders; a++)
            {
                var share = (int)(count / appenders + (a < count % appenders ? 1 : 0));
                tasks[a] = batch == 1
                    ? Task.Run(() => AppendSinglesAsync(partition, workload, share, window))
                    : Task.Run(() => AppendBatchesAsync(partition, workload, share, window));
            }
            await Task.WhenAll(tasks);
            var elapsed = sw.Elapsed;
            gc.Stop();
            if (partition.EndOffset != count)
                throw new InvalidOperationException($"expected {count} records acknowledged, the partition ends at {partition.EndOffset}");
            var rate = count / elapsed.TotalSeconds;
            if (rates.Count == 0 || rate > rates.Max()) bestGc = gc;
            rates.Add(rate);
        }

        var best = rates.Max();
        var output = new BenchOutput("log-append")
            .Add("msgs_per_s", best)
            .Add("mb_per_s", best * size / 1e6, 1)
            .Add("count", count)
            .Add("size", size)
            .Add("appenders", appenders)
            .Add("batch", batch)
            .Add("window", window)
            .Add("in_flight_records", (long)appenders * window * batch)
            .Add("durability", nameof(DurabilityMode.AckAfterFsync))
            .Add("rounds", rounds)
            .Add("round_msgs_per_s", string.Join(',', rates.Select(r => r.ToString("F0", System.Globalization.CultureInfo.InvariantCulture))))
            .Add("fs", fileSystem);
        bestGc!.AddTo(output, count).Print();
    }

    /// <summary>Single-record appends, at most <paramref name="window"/> unacknowledged: the oldest
    /// is awaited before another is sent (acks come in offset order, so oldest first is exact).</summary>
    private static async Task AppendSinglesAsync(LogPartition partition, AppendWorkload workload, int count, int window)
    {
        var inFlight = new ValueTask<long>[window];
        var record = workload.Record;
        for (var i = 0; i < count; i++)
        {
            var slot = i % window;
            if (i >= window) await inFlight[slot];
#pragma warning disable CA2012 // each ValueTask in the window is awaited exactly once, oldest first
            inFlight[slot] = partition.AppendAsync(record);
#pragma warning restore CA2012
        }
        for (var i = Math.Max(0, count - window); i < count; i++) await inFlight[i % window];
    }

    private static async Task AppendBatchesAsync(LogPartition partition, AppendWorkload workload, int count, int window)
    {
        var batch = workload.Batch.Length;
        var calls = (count + batch - 1) / batch;
        var tail = count - (calls - 1) * batch;
        var last = tail == batch ? workload.Batch : workload.Prefix(tail);
        var inFlight = new ValueTask<long>[window];
        for (var i = 0; i < calls; i++)
        {
            var slot = i % window;
            if (i >= window) await inFlight[slot];
#pragma warning disable CA2012 // each ValueTask in the window is awaited exactly once, oldest first
            inFlight[slot] = partition.AppendAsync(i == calls - 1 ? last : workload.Batch);
#pragma warning restore CA2012
        }
        for (var i = Math.Max(0, calls - window); i < calls; i++) await inFlight[i % window];
    }
}
