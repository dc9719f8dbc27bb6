using System.Diagnostics;
using Herald.Log;

namespace Herald.Bench.Scenarios;

/// <summary>log-latency: an open-loop generator thread appends single records at a fixed rate
/// (it never waits for an ack before sending the next) and each record's append-to-ack latency
/// is measured from the AppendAsync call to the moment an awaiting caller resumes with its
/// offset. One async collector awaits the appends in order (acks come in offset order), so the
/// harness allocates nothing per record. The first half second is warm-up and is not counted.</summary>
public static class LogLatencyScenario
{
    public static async Task RunAsync(BenchOptions options)
    {
        var rate = options.Rate ?? 100_000;
        var measured = (int)(options.Count ?? 500_000);
        var size = options.Size ?? 128;
        var warmup = Math.Max(1, rate / 2);
        var total = checked(measured + warmup);
        var record = new AppendWorkload(size, 1).Record;

        using var dir = new BenchDirectory(options.Dir, "log-latency");
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        var partition = log.GetOrCreateTopic("bench", new TopicOptions { Partitions = 1, Durability = DurabilityMode.AckAfterFsync })[0];

        var recorder = new LatencyRecorder(total, warmup);
        var pacer = new Pacer(rate, options.Pace);
        var gc = new GcMeter();
#pragma warning disable CA2012 // each append is awaited exactly once, by the collector
        // Pooled state machines: the harness must not allocate per record (0 GCs in the figures).
        await OpenLoop.RunAsync(total, pacer, recorder, _ => partition.AppendAsync(record),
            [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))] async ValueTask (int i, ValueTask<long> append) =>
#pragma warning restore CA2012
        {
            var offset = await append;
            recorder.Acks[i] = Stopwatch.GetTimestamp();
            if (offset != i) throw new InvalidOperationException($"record {i} was acknowledged at offset {offset}");
        });
        gc.Stop();

        var output = recorder.AddTo(new BenchOutput("log-latency"))
            .Add("rate", rate)
            .Add("pace", options.Pace)
            .Add("count", measured)
            .Add("warmup", warmup)
            .Add("size", size)
            .Add("fs", dir.FileSystem);
        gc.AddTo(output, total).Print();
    }
}
