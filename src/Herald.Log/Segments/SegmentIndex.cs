using System.Buffers.Binary;
using Herald.Log.Batches;
using Herald.Log.Internal;

namespace Herald.Log.Segments;

/// <summary>The sparse offset index and the time index of one segment. An offset entry maps a
/// batch's base offset to its byte position; a time entry (T, position) says every batch before
/// that position has timestamps below or at T, with T strictly increasing across entries.
/// Entries are added at most every IndexIntervalBytes, so a lookup is a binary search plus a
/// scan of at most one interval.</summary>
internal sealed class SegmentIndex
{
    private const uint Magic = 0x48494458; // "HIDX"
    private const int FileHeaderSize = 4 + 4 + 8 + 8 + 8 + 4;
    private readonly Lock _lock = new();
    private readonly int _interval;
    private long[] _offsets = new long[16];
    private int[] _offsetPositions = new int[16];
    private int _offsetCount;
    private long[] _times = new long[16];
    private int[] _timePositions = new int[16];
    private int _timeCount;
    private long _bytesSinceEntry;
    private long _runningMaxTimestamp = -1;
    private bool _first = true;

    public SegmentIndex(int intervalBytes) => _interval = intervalBytes;

    /// <summary>The newest timestamp of any batch indexed so far.</summary>
    public long MaxTimestamp => _runningMaxTimestamp;

    public int OffsetEntryCount { get { lock (_lock) return _offsetCount; } }

    /// <summary>Notes a batch written at <paramref name="position"/>, adding entries when due.</summary>
    public void OnBatch(long baseOffset, long position, int size, long maxTimestamp)
    {
        lock (_lock)
        {
            if (_first || _bytesSinceEntry >= _interval)
            {
                Add(ref _offsets, ref _offsetPositions, ref _offsetCount, baseOffset, (int)position);
                if (!_first && _runningMaxTimestamp > (_timeCount == 0 ? long.MinValue : _times[_timeCount - 1]))
                    Add(ref _times, ref _timePositions, ref _timeCount, _runningMaxTimestamp, (int)position);
                _bytesSinceEntry = 0;
                _first = false;
            }
            _bytesSinceEntry += size;
            if (maxTimestamp > _runningMaxTimestamp) _runningMaxTimestamp = maxTimestamp;
        }
    }

    /// <summary>The position of the last indexed batch whose base offset is at or below
    /// <paramref name="offset"/> (0 when none).</summary>
    public int LookupOffset(long offset)
    {
        lock (_lock)
        {
            int lo = 0, hi = _offsetCount - 1, found = -1;
            while (lo <= hi)
            {
                var mid = (lo + hi) >>> 1;
                if (_offsets[mid] <= offset) { found = mid; lo = mid + 1; }
                else hi = mid - 1;
            }
            return found < 0 ? 0 : _offsetPositions[found];
        }
    }

    /// <summary>A position before which every batch is older than <paramref name="timestamp"/>.</summary>
    public int LookupTime(long timestamp)
    {
        lock (_lock)
        {
            int lo = 0, hi = _timeCount - 1, found = -1;
            while (lo <= hi)
            {
                var mid = (lo + hi) >>> 1;
                if (_times[mid] < timestamp) { found = mid; lo = mid + 1; }
                else hi = mid - 1;
            }
            return found < 0 ? 0 : _timePositions[found];
        }
    }

    private static void Add(ref long[] keys, ref int[] positions, ref int count, long key, int position)
    {
        if (count == keys.Length)
        {
            Array.Resize(ref keys, count * 2);
            Array.Resize(ref positions, count * 2);
        }
        keys[count] = key;
        positions[count] = position;
        count++;
    }

    /// <summary>Writes both index files for a segment whose valid bytes are <paramref name="coveredLength"/>.</summary>
    public void Save(LogFileSystem fs, string logPath, long coveredLength, long nextOffset, bool sync)
    {
        lock (_lock)
        {
            Write(fs, IndexPath(logPath), coveredLength, nextOffset, _offsets, _offsetPositions, _offsetCount, sync);
            Write(fs, TimeIndexPath(logPath), coveredLength, nextOffset, _times, _timePositions, _timeCount, sync);
        }
    }

    private void Write(LogFileSystem fs, string path, long coveredLength, long nextOffset, long[] keys, int[] positions, int count, bool sync)
    {
        var buffer = new byte[FileHeaderSize + count * 12 + 4];
        var span = buffer.AsSpan();
        BinaryPrimitives.WriteUInt32BigEndian(span, Magic);
        BinaryPrimitives.WriteInt32BigEndian(span[4..], _interval);
        BinaryPrimitives.WriteInt64BigEndian(span[8..], coveredLength);
        BinaryPrimitives.WriteInt64BigEndian(span[16..], nextOffset);
        BinaryPrimitives.WriteInt64BigEndian(span[24..], _runningMaxTimestamp);
        BinaryPrimitives.WriteInt32BigEndian(span[32..], count);
        var p = FileHeaderSize;
        for (var i = 0; i < count; i++)
        {
            BinaryPrimitives.WriteInt64BigEndian(span[p..], keys[i]);
            BinaryPrimitives.WriteInt32BigEndian(span[(p + 8)..], positions[i]);
            p += 12;
        }
        BinaryPrimitives.WriteUInt32BigEndian(span[p..], Crc32C.Compute(span[..p]));
        using var file = fs.Open(path, create: true);
        file.SetLength(0);
        file.Write(buffer, 0);
        if (sync) file.Sync();
    }

    /// <summary>Loads both index files; null when either is missing, damaged, or does not cover
    /// exactly <paramref name="logLength"/> bytes of log (stale), so the caller rebuilds it.</summary>
    public static (SegmentIndex Index, long NextOffset)? TryLoad(LogFileSystem fs, string logPath, long logLength, int interval)
    {
        var index = new SegmentIndex(interval);
        var offsets = TryRead(fs, IndexPath(logPath), logLength, interval);
        var times = TryRead(fs, TimeIndexPath(logPath), logLength, interval);
        if (offsets is null || times is null || offsets.Value.NextOffset != times.Value.NextOffset) return null;
        index._offsets = offsets.Value.Keys;
        index._offsetPositions = offsets.Value.Positions;
        index._offsetCount = offsets.Value.Keys.Length;
        index._times = times.Value.Keys;
        index._timePositions = times.Value.Positions;
        index._timeCount = times.Value.Keys.Length;
        index._runningMaxTimestamp = offsets.Value.MaxTimestamp;
        index._first = index._offsetCount == 0;
        if (index._offsets.Length == 0) { index._offsets = new long[16]; index._offsetPositions = new int[16]; }
        if (index._times.Length == 0) { index._times = new long[16]; index._timePositions = new int[16]; }
        return (index, offsets.Value.NextOffset);
    }

    private static (long[] Keys, int[] Positions, long NextOffset, long MaxTimestamp)? TryRead(LogFileSystem fs, string path, long logLength, int interval)
    {
        if (!fs.Exists(path)) return null;
        byte[] data;
        try { data = fs.ReadAll(path); }
        catch (IOException) { return null; }
        if (data.Length < FileHeaderSize + 4) return null;
        var span = data.AsSpan();
        if (BinaryPrimitives.ReadUInt32BigEndian(span) != Magic) return null;
        if (BinaryPrimitives.ReadUInt32BigEndian(span[^4..]) != Crc32C.Compute(span[..^4])) return null;
        if (BinaryPrimitives.ReadInt32BigEndian(span[4..]) != interval) return null;
        if (BinaryPrimitives.ReadInt64BigEndian(span[8..]) != logLength) return null;
        var count = BinaryPrimitives.ReadInt32BigEndian(span[32..]);
        if (count < 0 || data.Length != FileHeaderSize + count * 12 + 4) return null;
        var keys = new long[count];
        var positions = new int[count];
        for (int i = 0, p = FileHeaderSize; i < count; i++, p += 12)
        {
            keys[i] = BinaryPrimitives.ReadInt64BigEndian(span[p..]);
            positions[i] = BinaryPrimitives.ReadInt32BigEndian(span[(p + 8)..]);
            if (positions[i] < 0 || positions[i] >= logLength) return null;
            if (i > 0 && (keys[i] <= keys[i - 1] || positions[i] <= positions[i - 1])) return null;
        }
        return (keys, positions, BinaryPrimitives.ReadInt64BigEndian(span[16..]), BinaryPrimitives.ReadInt64BigEndian(span[24..]));
    }

    public static string IndexPath(string logPath) => Path.ChangeExtension(logPath, ".index");

    public static string TimeIndexPath(string logPath) => Path.ChangeExtension(logPath, ".timeindex");
}
