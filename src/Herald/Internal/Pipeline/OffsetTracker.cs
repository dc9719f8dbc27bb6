namespace Herald.Internal.Pipeline;

/// <summary>The records of one partition from fetch until committable, in offset order. Records
/// finish in any order; the committable offset is that of the lowest unfinished one (or the next
/// to fetch when all are finished). A ring buffer whose size is a power of two, indexed by mask
/// (pipeline benchmark: a division per record added and per record finished): O(1) to add and finish.</summary>
internal sealed class OffsetTracker
{
    private long[] _offsets = new long[64];
    private int[] _sizes = new int[64];
    private bool[] _done = new bool[64];
    private int _head;
    private int _count;
    private long _headSeq;
    private long _next = -1;

    /// <summary>Records fetched and not yet committable.</summary>
    public int Count => _count;

    /// <summary>Tracks a fetched record; returns its sequence number for <see cref="Finish"/>.</summary>
    public long Add(long offset, int size)
    {
        if (_count == _offsets.Length) Grow();
        var i = (_head + _count) & (_offsets.Length - 1);
        _offsets[i] = offset;
        _sizes[i] = size;
        _done[i] = false;
        _count++;
        _next = offset + 1;
        return _headSeq + _count - 1;
    }

    /// <summary>Marks a record finished; returns how many records (and bytes) became committable.</summary>
    public (int Records, long Bytes) Finish(long seq)
    {
        var index = seq - _headSeq;
        if (index < 0 || index >= _count) throw new InvalidOperationException($"sequence {seq} is not tracked (head {_headSeq}, count {_count})");
        var mask = _offsets.Length - 1;
        _done[(_head + (int)index) & mask] = true;
        var records = 0;
        long bytes = 0;
        while (_count > 0 && _done[_head])
        {
            bytes += _sizes[_head];
            records++;
            _head = (_head + 1) & mask;
            _count--;
            _headSeq++;
        }
        return (records, bytes);
    }

    /// <summary>The offset to commit: the lowest unfinished record, or the one after the last
    /// fetched; -1 when nothing was ever fetched.</summary>
    public long Committable => _count > 0 ? _offsets[_head] : _next;

    private void Grow()
    {
        var n = _offsets.Length * 2;
        var offsets = new long[n];
        var sizes = new int[n];
        var done = new bool[n];
        for (var i = 0; i < _count; i++)
        {
            var j = (_head + i) & (_offsets.Length - 1);
            offsets[i] = _offsets[j];
            sizes[i] = _sizes[j];
            done[i] = _done[j];
        }
        (_offsets, _sizes, _done, _head) = (offsets, sizes, done, 0);
    }
}
