using System.Buffers;
using System.Collections;
using System.Collections.Concurrent;
using Herald.Log;

namespace Herald.Internal;

/// <summary>One outgoing record's bytes: the serialized value and the header values share one
/// rented array, and the header list is reused, so a publish allocates nothing per event beyond
/// its id (pipeline benchmark).</summary>
internal sealed class PublishBuffer : IBufferWriter<byte>, IReadOnlyList<LogHeader>, IDisposable
{
    private Pool? _pool;

    /// <summary>Goes back to its pool: called once by the transport when it has copied the record.</summary>
    public void Dispose()
    {
        var pool = _pool;
        _pool = null;
        if (pool is not null) pool.Return(this);
    }

    private const int InitialSize = 512;
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(InitialSize);
    private int _written;
    private readonly LogHeader[] _headers = new LogHeader[16];
    private int _headerCount;

    public int Written => _written;

    public ReadOnlyMemory<byte> Slice(int start, int length) => _buffer.AsMemory(start, length);

    public void Advance(int count) => _written += count;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_written);
    }

    private void Ensure(int sizeHint)
    {
        if (sizeHint < 1) sizeHint = 256;
        if (_buffer.Length - _written >= sizeHint) return;
        var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _written + sizeHint));
        _buffer.AsSpan(0, _written).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = bigger;
    }

    private readonly int[] _starts = new int[16];
    private readonly int[] _lengths = new int[16];
    private int _inBuffer; // bit i: header i's value lives in this buffer, at _starts[i]

    /// <summary>Adds a header with a value held elsewhere (such as a cached type name).</summary>
    public void AddHeader(string key, ReadOnlyMemory<byte> value) => _headers[_headerCount++] = new LogHeader(key, value);

    /// <summary>Adds a header, writing its text value into this buffer.</summary>
    public void AddHeader(string key, string value)
    {
        var start = _written;
        Advance(System.Text.Encoding.UTF8.GetBytes(value, GetSpan(System.Text.Encoding.UTF8.GetMaxByteCount(value.Length))));
        AddHeaderWritten(key, start);
    }

    /// <summary>Records the bytes written since <paramref name="start"/> as a header value.</summary>
    public void AddHeaderWritten(string key, int start)
    {
        _inBuffer |= 1 << _headerCount;
        _starts[_headerCount] = start;
        _lengths[_headerCount] = _written - start;
        _headers[_headerCount++] = new LogHeader(key, default);
    }

    /// <summary>Points the header values written into this buffer at its final array; call once
    /// all writing is done, since the array may be replaced as it grows.</summary>
    public void Seal()
    {
        for (var i = 0; i < _headerCount; i++)
            if ((_inBuffer & (1 << i)) != 0) _headers[i] = new LogHeader(_headers[i].Key, _buffer.AsMemory(_starts[i], _lengths[i]));
    }

    public void Reset()
    {
        Array.Clear(_headers, 0, _headerCount);
        _written = 0;
        _headerCount = 0;
        _inBuffer = 0;
        // A pooled buffer keeps at most 4 KiB: after a burst of large events the pool (up to 8,192
        // buffers) must not hold their arrays.
        if (_buffer.Length > 4 * 1024)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = ArrayPool<byte>.Shared.Rent(InitialSize);
        }
    }

    public int Count => _headerCount;

    public LogHeader this[int index] => (uint)index < (uint)_headerCount ? _headers[index] : throw new ArgumentOutOfRangeException(nameof(index));

    public IEnumerator<LogHeader> GetEnumerator()
    {
        for (var i = 0; i < _headerCount; i++) yield return _headers[i];
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>A small bounded pool: a buffer comes back once its append completed.</summary>
    public sealed class Pool
    {
        // Sized for many outstanding publishes: group commit returns buffers in bursts of
        // thousands, and a smaller pool dropped most of each burst (pipeline benchmark).
        private const int MaxPooled = 8192;
        private readonly ConcurrentQueue<PublishBuffer> _free = new();
        private int _count;

        public PublishBuffer Rent()
        {
            if (!_free.TryDequeue(out var b)) b = new PublishBuffer();
            else Interlocked.Decrement(ref _count);
            b._pool = this;
            return b;
        }

        public void Return(PublishBuffer buffer)
        {
            buffer.Reset();
            if (Interlocked.Increment(ref _count) <= MaxPooled) _free.Enqueue(buffer);
            else Interlocked.Decrement(ref _count);
        }
    }
}
