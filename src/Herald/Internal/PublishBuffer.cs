using System.Buffers;
using System.Collections;
using System.Collections.Concurrent;
using Herald.Log;

namespace Herald.Internal;

/// <summary>One outgoing record's bytes: the serialized value, the key and the headers (already in
/// the log's stored form) share one rented array, so a publish allocates almost nothing per event
/// and the log copies the headers without encoding them again (pipeline benchmark).</summary>
internal sealed class PublishBuffer : IBufferWriter<byte>, IWellFormedEncodedHeaders, IDisposable
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

    private int _headersStart;
    private int _headerCount;

    /// <summary>Header fields go after everything written so far.</summary>
    public void BeginHeaders()
    {
        _headersStart = _written;
        _headerCount = 0;
        _decoded = null;
    }

    /// <summary>Adds a header whose key field (see <see cref="Field"/>) and value bytes are known.</summary>
    public void AddHeader(byte[] keyField, ReadOnlySpan<byte> value)
    {
        var span = GetSpan(keyField.Length + 5 + value.Length);
        keyField.CopyTo(span);
        Advance(keyField.Length + RecordHeaders.WriteField(span[keyField.Length..], value));
        _headerCount++;
    }

    /// <summary>Adds a header with a text value, written as UTF-8.</summary>
    public void AddHeader(byte[] keyField, string value)
    {
        var length = System.Text.Encoding.UTF8.GetByteCount(value);
        var span = GetSpan(keyField.Length + 5 + length);
        keyField.CopyTo(span);
        var p = keyField.Length + RecordHeaders.WriteFieldLength(span[keyField.Length..], length);
        Advance(p + System.Text.Encoding.UTF8.GetBytes(value, span[p..]));
        _headerCount++;
    }

    /// <summary>The headers added since <see cref="BeginHeaders"/> (the last thing written), in the
    /// log's stored form: the log copies them as they are. The buffer itself is the record's header
    /// list, so a publish allocates no list (pipeline benchmark).</summary>
    public ReadOnlySpan<byte> EncodedFields => _buffer.AsSpan(_headersStart, _written - _headersStart);

    public int Count => _headerCount;

    // The list view, for transports that want headers one by one: decoded when first asked for.
    private RecordHeaders? _decoded;

    private RecordHeaders Decoded() => _decoded ??= RecordHeaders.FromEncoded(_buffer.AsMemory(_headersStart, _written - _headersStart), _headerCount);

    public LogHeader this[int index] => Decoded()[index];

    public IEnumerator<LogHeader> GetEnumerator() => Decoded().GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>A header key's stored field (its length, then its UTF-8 bytes), made once per name.</summary>
    public static byte[] Field(string key)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(key);
        var field = new byte[bytes.Length + 5];
        return field.AsSpan(0, RecordHeaders.WriteField(field, bytes)).ToArray();
    }

    public void Reset()
    {
        _written = 0;
        _headerCount = 0;
        _headersStart = 0;
        _decoded = null;
        // A pooled buffer keeps at most 4 KiB: after a burst of large events the pool (up to 8,192
        // buffers) must not hold their arrays.
        if (_buffer.Length > 4 * 1024)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = ArrayPool<byte>.Shared.Rent(InitialSize);
        }
    }

    /// <summary>A bounded pool: a buffer comes back once the log's writer has copied its record.</summary>
    public sealed class Pool
    {
        // Sized for many outstanding publishes: the writer returns a whole group's buffers at
        // once, and a smaller pool dropped most of each burst (pipeline benchmark).
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
