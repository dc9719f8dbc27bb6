using System.Diagnostics;

namespace Herald.Bench;

/// <summary>The schedule of an open-loop generator: record i is due at start + i / rate, and is
/// sent then whether or not earlier records have been acknowledged.</summary>
public sealed class Pacer
{
    private readonly double _ticksPerRecord;
    private readonly bool _burst;
    private long _start;

    public Pacer(int rate, string pace)
    {
        _ticksPerRecord = (double)Stopwatch.Frequency / rate;
        _burst = pace == "burst";
    }

    public void Start() => _start = Stopwatch.GetTimestamp();

    /// <summary>Waits until record <paramref name="index"/> is due; returns its due time in
    /// Stopwatch ticks. A generator running late returns at once (it catches up).</summary>
    public long WaitUntilDue(long index)
    {
        var due = _start + (long)(index * _ticksPerRecord);
        if (_burst)
        {
            while (Stopwatch.GetTimestamp() < due) Thread.Sleep(1);
        }
        else
        {
            while (Stopwatch.GetTimestamp() < due) Thread.Yield();
        }
        return due;
    }
}
