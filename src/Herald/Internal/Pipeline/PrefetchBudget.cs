namespace Herald.Internal.Pipeline;

/// <summary>Records and bytes fetched and not yet committable, for one kind of topic (main or
/// retry). The fetch loop stops fetching that kind when it is full, and starts again only once a
/// quarter of it (at most 512 records and 64 KiB) is free: fetching each record as soon as one
/// slot frees up made batches of one and cost 6x the throughput (pipeline benchmark).</summary>
internal sealed class PrefetchBudget(int maxRecords, long maxBytes)
{
    private readonly int _recordSlack = Math.Clamp(maxRecords / 4, 1, 512);
    private readonly long _byteSlack = Math.Clamp(maxBytes / 4, 1, 64 * 1024);
    private int _records;
    private long _bytes;

    public bool HasRoom => Volatile.Read(ref _records) <= maxRecords - _recordSlack && Interlocked.Read(ref _bytes) <= maxBytes - _byteSlack;

    public int RecordRoom => Math.Max(0, maxRecords - Volatile.Read(ref _records));

    public long ByteRoom => Math.Max(0, maxBytes - Interlocked.Read(ref _bytes));

    public int Records => Volatile.Read(ref _records);

    public long Bytes => Interlocked.Read(ref _bytes);

    public void Take(int records, long bytes)
    {
        Interlocked.Add(ref _records, records);
        Interlocked.Add(ref _bytes, bytes);
    }

    /// <summary>Returns room; true when this made a full budget usable again. Called by one
    /// thread (the dispatcher) while the fetch loop takes room on another: the crossing is judged
    /// from the values each atomic subtraction saw, never from a read made before it, which a
    /// concurrent <see cref="Take"/> could make stale (then the fetch loop, having seen a full
    /// budget, waited for a wake that never came).</summary>
    public bool Release(int records, long bytes)
    {
        if (records == 0 && bytes == 0) return false;
        var recordLimit = maxRecords - _recordSlack;
        var byteLimit = maxBytes - _byteSlack;
        var recordsAfter = Interlocked.Add(ref _records, -records);
        var bytesAfter = Interlocked.Add(ref _bytes, -bytes);
        var crossed = (recordsAfter + records > recordLimit && recordsAfter <= recordLimit)
            || (bytesAfter + bytes > byteLimit && bytesAfter <= byteLimit);
        // The fetch loop takes nothing while it waits, so after it saw the budget full only this
        // thread changes it: the release that brings the last of the two counts under its limit
        // sees the other one under its limit too.
        return crossed && HasRoom;
    }
}
