using System.Diagnostics;

namespace Herald.Bench;

/// <summary>Per-record timestamps of an open-loop run (due, sent, acknowledged), preallocated,
/// and the percentiles computed from them. The first <c>warmup</c> records are not counted.</summary>
public sealed class LatencyRecorder
{
    private readonly int _warmup;

    public LatencyRecorder(int total, int warmup)
    {
        _warmup = warmup;
        Dues = new long[total];
        Starts = new long[total];
        Acks = new long[total];
    }

    public long[] Dues { get; }
    public long[] Starts { get; }
    public long[] Acks { get; }

    /// <summary>Adds msgs_per_s (acknowledged over the measured part), p50/p99/p999/max_us from the
    /// call and p99_from_due_us (from the schedule: what a late generator cost).</summary>
    public BenchOutput AddTo(BenchOutput output)
    {
        var n = Starts.Length - _warmup;
        var fromCall = new long[n];
        var fromDue = new long[n];
        long lastAck = 0;
        for (var k = 0; k < n; k++)
        {
            var i = k + _warmup;
            fromCall[k] = Acks[i] - Starts[i];
            fromDue[k] = Acks[i] - Dues[i];
            lastAck = Math.Max(lastAck, Acks[i]);
        }
        Array.Sort(fromCall);
        Array.Sort(fromDue);
        var elapsed = Stopwatch.GetElapsedTime(Starts[_warmup], lastAck);
        return output
            .Add("msgs_per_s", n / elapsed.TotalSeconds)
            .Add("p50_us", Micros(Percentile(fromCall, 0.50)), 1)
            .Add("p99_us", Micros(Percentile(fromCall, 0.99)), 1)
            .Add("p999_us", Micros(Percentile(fromCall, 0.999)), 1)
            .Add("max_us", Micros(fromCall[^1]), 1)
            .Add("p99_from_due_us", Micros(Percentile(fromDue, 0.99)), 1);
    }

    public static long Percentile(long[] sorted, double p) => sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * p))];

    public static double Micros(long ticks) => ticks * 1e6 / Stopwatch.Frequency;
}
