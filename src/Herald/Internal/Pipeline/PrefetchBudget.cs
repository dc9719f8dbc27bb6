namespace Herald.Internal.Pipeline;

/// <summary>Records and bytes fetched and not yet committable, for one kind of topic (main or
/// retry). The fetch loop stops fetching that kind when it is full.</summary>
internal sealed class PrefetchBudget(int maxRecords, long maxBytes)
{
    private int _records;
    private long _bytes;

    public bool HasRoom => Volatile.Read(ref _records) < maxRecords && Interlocked.Read(ref _bytes) < maxBytes;

    public int RecordRoom => Math.Max(0, maxRecords - Volatile.Read(ref _records));

    public long ByteRoom => Math.Max(0, maxBytes - Interlocked.Read(ref _bytes));

    public int Records => Volatile.Read(ref _records);

    public long Bytes => Interlocked.Read(ref _bytes);

    public void Take(int records, long bytes)
    {
        Interlocked.Add(ref _records, records);
        Interlocked.Add(ref _bytes, bytes);
    }

    /// <summary>Returns room; true when this made a full budget usable again.</summary>
    public bool Release(int records, long bytes)
    {
        if (records == 0 && bytes == 0) return false;
        var wasFull = !HasRoom;
        Interlocked.Add(ref _records, -records);
        Interlocked.Add(ref _bytes, -bytes);
        return wasFull && HasRoom;
    }
}
