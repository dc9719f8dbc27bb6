namespace Herald.CrashWorker;

/// <summary>Which offsets of the topic the worker has handled, and a task that completes once it
/// has handled as many distinct offsets, within the given ranges, as it was told to wait for.</summary>
internal sealed class HandledCoverage
{
    private readonly Lock _lock = new();
    private readonly HashSet<(int Partition, long Offset)> _seen = [];
    private readonly long[] _from;
    private readonly long[] _end;
    private readonly TaskCompletionSource _complete = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _remaining;

    private HandledCoverage(long remaining, long[] from, long[] end)
    {
        _remaining = remaining;
        _from = from;
        _end = end;
        if (_remaining == 0) _complete.TrySetResult();
    }

    /// <summary>Waits for <paramref name="events"/> distinct offsets, wherever they are.</summary>
    public static HandledCoverage ForEvents(int partitions, int events)
    {
        var end = new long[partitions];
        Array.Fill(end, long.MaxValue);
        return new HandledCoverage(events, new long[partitions], end);
    }

    /// <summary>Waits for every offset in [<paramref name="from"/>[p], <paramref name="end"/>[p]) of every partition p.</summary>
    public static HandledCoverage ForRanges(long[] from, long[] end)
    {
        long remaining = 0;
        for (var p = 0; p < from.Length; p++) remaining += end[p] - from[p];
        return new HandledCoverage(remaining, from, end);
    }

    public Task Complete => _complete.Task;

    /// <summary>Records a handled offset; true the first time it is handled.</summary>
    public bool Handled(int partition, long offset)
    {
        lock (_lock)
        {
            if (!_seen.Add((partition, offset))) return false;
            if (offset >= _from[partition] && offset < _end[partition] && --_remaining == 0) _complete.TrySetResult();
            return true;
        }
    }

    public string Describe()
    {
        lock (_lock) return $"{_seen.Count} distinct offsets handled, {_remaining} still to handle (ranges from [{string.Join(", ", _from)}] to [{string.Join(", ", _end)}])";
    }
}
