using System.Collections;
using Herald.Log.Batches;

namespace Herald.Log;

/// <summary>The headers of a record read from the log, decoded only when asked for: looking one
/// up by name scans the stored bytes without allocating, and the list is built on first index
/// (pipeline benchmark: decoding every header of every record was the largest cost per event
/// after the payload). The batch was validated when read, so its framing is known to be sound.</summary>
public sealed class RecordHeaders : IReadOnlyList<LogHeader>
{
    private readonly ReadOnlyMemory<byte> _raw;
    private LogHeader[]? _parsed;

    internal RecordHeaders(ReadOnlyMemory<byte> raw, int count)
    {
        _raw = raw;
        Count = count;
    }

    public int Count { get; }

    /// <summary>The stored size of the headers in bytes.</summary>
    public int StoredLength => _raw.Length;

    public LogHeader this[int index] => Parsed()[index];

    /// <summary>The value of the first header named <paramref name="key"/> (ASCII or UTF-8).</summary>
    public bool TryGetValue(string key, out ReadOnlyMemory<byte> value)
    {
        ArgumentNullException.ThrowIfNull(key);
        var span = _raw.Span;
        var pos = 0;
        for (var i = 0; i < Count; i++)
        {
            var (keyStart, keyLength) = Field(span, ref pos);
            var (valueStart, valueLength) = Field(span, ref pos);
            if (Matches(span.Slice(keyStart, keyLength), key))
            {
                value = _raw.Slice(valueStart, valueLength);
                return true;
            }
        }
        value = default;
        return false;
    }

    private static bool Matches(ReadOnlySpan<byte> utf8, string key)
    {
        if (utf8.Length != key.Length) return utf8.Length >= key.Length && System.Text.Encoding.UTF8.GetString(utf8) == key;
        for (var i = 0; i < utf8.Length; i++)
        {
            var c = key[i];
            if (c >= 0x80) return System.Text.Encoding.UTF8.GetString(utf8) == key;
            if (utf8[i] != c) return false;
        }
        return true;
    }

    private static (int Start, int Length) Field(ReadOnlySpan<byte> span, ref int pos)
    {
        if (!Varint.TryRead(span[pos..], out int length, out var n) || pos + n + Math.Max(length, 0) > span.Length)
            throw new InvalidRecordBatchException("headers", pos, "a header field is malformed");
        pos += n;
        var start = pos;
        pos += Math.Max(length, 0);
        return (start, Math.Max(length, 0));
    }

    private LogHeader[] Parsed()
    {
        if (_parsed is { } parsed) return parsed;
        var list = new LogHeader[Count];
        var span = _raw.Span;
        var pos = 0;
        for (var i = 0; i < Count; i++)
        {
            var (keyStart, keyLength) = Field(span, ref pos);
            var (valueStart, valueLength) = Field(span, ref pos);
            list[i] = new LogHeader(HeaderKeys.Get(span.Slice(keyStart, keyLength)), _raw.Slice(valueStart, valueLength));
        }
        return _parsed = list;
    }

    public IEnumerator<LogHeader> GetEnumerator() => ((IEnumerable<LogHeader>)Parsed()).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
