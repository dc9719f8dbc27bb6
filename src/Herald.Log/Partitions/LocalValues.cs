namespace Herald.Log.Partitions;

/// <summary>The in-memory values the partition's most recent records were made from (see
/// <see cref="NewRecord.Local"/>), by offset, in a fixed ring. The writer thread sets a slot once
/// its record is durable; readers on any thread look one up without a lock, seqlock-style: the
/// slot's offset is read before and after its value, and a slot being overwritten (its offset
/// first set to -1, then the value, then the new offset) reads as a miss, never as another
/// record's value. Offsets only grow, and only durable ones are ever set, so a slot's offset is
/// never reused for a different record.</summary>
internal sealed class LocalValues(int capacity)
{
    private readonly long[] _offsets = CreateOffsets(capacity);
    private readonly object?[] _values = new object?[capacity];

    private static long[] CreateOffsets(int capacity)
    {
        var offsets = new long[capacity];
        Array.Fill(offsets, -1);
        return offsets;
    }

    /// <summary>Writer thread only.</summary>
    public void Set(long offset, object value)
    {
        var i = (int)(offset % _offsets.Length);
        Volatile.Write(ref _offsets[i], -1);
        Volatile.Write(ref _values[i], value);
        Volatile.Write(ref _offsets[i], offset);
    }

    public object? Get(long offset)
    {
        var i = (int)(offset % _offsets.Length);
        if (Volatile.Read(ref _offsets[i]) != offset) return null;
        var value = Volatile.Read(ref _values[i]);
        return Volatile.Read(ref _offsets[i]) == offset ? value : null;
    }
}
