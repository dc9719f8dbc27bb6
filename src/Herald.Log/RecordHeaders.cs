using System.Collections;
using Herald.Log.Batches;

namespace Herald.Log;

/// <summary>The headers of a record read from the log, decoded only when asked for: looking one
/// up by name scans the stored bytes without allocating, and the list is built on first index
/// (pipeline benchmark: decoding every header of every record was the largest cost per event
/// after the payload). The batch was validated when read, so its framing is known to be sound.</summary>
public sealed class RecordHeaders : IEncodedHeaders
{
    private readonly ReadOnlyMemory<byte> _raw;
    private LogHeader[]? _parsed;

    internal RecordHeaders(ReadOnlyMemory<byte> raw, int count)
    {
        _raw = raw;
        Count = count;
    }

    /// <summary>Headers already in the stored form: <paramref name="count"/> key/value pairs, each
    /// field a zig-zag varint length and its bytes (see <see cref="WriteField"/>). The log copies
    /// them into a batch as they are, without encoding each header again (pipeline benchmark).</summary>
    /// <exception cref="ArgumentException">The fields are malformed; the message names the byte offset.</exception>
    public static RecordHeaders FromEncoded(ReadOnlyMemory<byte> fields, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (Check(fields.Span, count) is { } error) throw new ArgumentException(error, nameof(fields));
        return new RecordHeaders(fields, count);
    }

    /// <summary>Null when <paramref name="fields"/> are <paramref name="count"/> well-formed
    /// key/value pairs and nothing else; otherwise what is wrong, with its byte offset.</summary>
    public static string? Check(ReadOnlySpan<byte> fields, int count)
    {
        var pos = 0;
        for (var i = 0; i < 2 * count; i++)
        {
            if (!Varint.TryRead(fields[pos..], out int length, out var n) || length < 0 || pos + n + length > fields.Length)
                return $"header {i / 2}: the {(i % 2 == 0 ? "key" : "value")} field at byte {pos} is malformed or runs past the end ({fields.Length} bytes)";
            pos += n + length;
        }
        return pos == fields.Length ? null : $"{fields.Length - pos} bytes follow the {count} headers, from byte {pos}";
    }

    /// <summary>Writes one field of the stored form (a zig-zag varint length, then the bytes) and
    /// returns the bytes written: at most 5 more than <paramref name="value"/>.</summary>
    public static int WriteField(Span<byte> destination, ReadOnlySpan<byte> value)
    {
        var n = Varint.Write(destination, value.Length);
        value.CopyTo(destination[n..]);
        return n + value.Length;
    }

    /// <summary>Writes just a field's length prefix (its bytes follow): returns the bytes written, at most 5.</summary>
    public static int WriteFieldLength(Span<byte> destination, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        return Varint.Write(destination, length);
    }

    /// <summary>The stored form: the fields after the count.</summary>
    public ReadOnlySpan<byte> EncodedFields => _raw.Span;

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

/// <summary>Headers a producer already holds in the log's stored form: <see cref="IReadOnlyCollection{T}.Count"/>
/// key/value pairs, each field a zig-zag varint length and its bytes (see
/// <see cref="RecordHeaders.WriteField"/>). The log copies <see cref="EncodedFields"/> into a batch
/// as they are, after checking them (<see cref="RecordHeaders.Check"/>) when the append is made.</summary>
public interface IEncodedHeaders : IReadOnlyList<LogHeader>
{
    ReadOnlySpan<byte> EncodedFields { get; }
}

/// <summary>Encoded headers whose fields are well-formed by construction: Herald core's publish
/// buffer, which writes every field through <see cref="RecordHeaders.WriteField"/> (its tests check
/// the result against <see cref="RecordHeaders.Check"/>). The log copies them without checking them
/// again on every append (pipeline benchmark: the check was 1.6 % of all CPU time).</summary>
internal interface IWellFormedEncodedHeaders : IEncodedHeaders;
