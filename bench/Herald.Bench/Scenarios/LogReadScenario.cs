using System.Diagnostics;
using Herald.Log;

namespace Herald.Bench.Scenarios;

/// <summary>log-read: fills one partition, closes the log, reopens it (recovery included, timed
/// as open_ms), then reads every record sequentially with Read + DecodeRecords. The files were
/// just written, so the page cache is warm: this measures the engine, not the disk.</summary>
public static class LogReadScenario
{
    public static async Task RunAsync(BenchOptions options)
    {
        var count = options.Count ?? 1_000_000;
        var size = options.Size ?? 128;
        var rounds = options.Rounds ?? 3;
        const int FillBatch = 1000;
        var workload = new AppendWorkload(size, FillBatch);

        using var dir = new BenchDirectory(options.Dir, "log-read");
        var logOptions = new EmbeddedLogOptions { MaintenanceInterval = null };
        await using (var log = EmbeddedLog.Open(dir.Path, logOptions))
        {
            var partition = log.GetOrCreateTopic("bench", new TopicOptions { Partitions = 1 })[0];
            var inFlight = new Queue<ValueTask<long>>();
            for (long written = 0; written < count;)
            {
                var n = (int)Math.Min(FillBatch, count - written);
#pragma warning disable CA2012 // each queued ValueTask is awaited exactly once, oldest first
                inFlight.Enqueue(partition.AppendAsync(n == FillBatch ? workload.Batch : workload.Prefix(n)));
#pragma warning restore CA2012
                written += n;
                if (inFlight.Count >= 16) await inFlight.Dequeue();
            }
            while (inFlight.Count > 0) await inFlight.Dequeue();
        }

        var openWatch = Stopwatch.StartNew();
        await using var reopened = EmbeddedLog.Open(dir.Path, logOptions);
        var reader = reopened.GetOrCreateTopic("bench")[0];
        var openMs = openWatch.Elapsed.TotalMilliseconds;
        if (reader.EndOffset != count)
            throw new InvalidOperationException($"expected {count} records after reopening, the partition ends at {reader.EndOffset}");

        var records = new List<LogRecord>(16 * 1024);
        var rates = new List<double>();
        GcMeter? bestGc = null;
        long reads = 0;
        for (var round = 0; round < rounds; round++)
        {
            long seen = 0, bytes = 0;
            reads = 0;
            var gc = new GcMeter();
            var sw = Stopwatch.StartNew();
            for (var offset = reader.StartOffset; offset < reader.EndOffset;)
            {
                var read = reader.Read(offset);
                reads++;
                records.Clear();
                read.DecodeRecords(records);
                foreach (var r in records) bytes += r.Value!.Value.Length;
                seen += records.Count;
                offset = read.NextOffset;
            }
            var elapsed = sw.Elapsed;
            gc.Stop();
            if (seen != count || bytes != count * size)
                throw new InvalidOperationException($"read {seen} records and {bytes} value bytes, expected {count} and {count * size}");
            var rate = count / elapsed.TotalSeconds;
            if (rates.Count == 0 || rate > rates.Max()) bestGc = gc;
            rates.Add(rate);
        }

        var best = rates.Max();
        var output = new BenchOutput("log-read")
            .Add("msgs_per_s", best)
            .Add("mb_per_s", best * size / 1e6, 1)
            .Add("count", count)
            .Add("size", size)
            .Add("reads", reads)
            .Add("read_bytes", LogPartition.DefaultReadBytes)
            .Add("open_ms", openMs, 1)
            .Add("rounds", rounds)
            .Add("round_msgs_per_s", string.Join(',', rates.Select(r => r.ToString("F0", System.Globalization.CultureInfo.InvariantCulture))))
            .Add("cache", "warm")
            .Add("fs", dir.FileSystem);
        bestGc!.AddTo(output, count).Print();
    }
}
