using System.Buffers.Text;
using System.Globalization;
using System.Text;
using Herald.Log;

namespace Herald.Internal;

/// <summary>Reading header values without decoding every header of every record.</summary>
internal static class Headers
{
    public static ReadOnlyMemory<byte>? Find(IReadOnlyList<LogHeader> headers, string name)
    {
        if (headers is RecordHeaders stored) return stored.TryGetValue(name, out var value) ? value : (ReadOnlyMemory<byte>?)null;
        for (var i = 0; i < headers.Count; i++)
            if (string.Equals(headers[i].Key, name, StringComparison.Ordinal)) return headers[i].Value;
        return null;
    }

    public static string? String(IReadOnlyList<LogHeader> headers, string name) =>
        Find(headers, name) is { } v ? Encoding.UTF8.GetString(v.Span) : null;

    public static long? Long(IReadOnlyList<LogHeader> headers, string name) =>
        Find(headers, name) is { } v && Utf8Parser.TryParse(v.Span, out long value, out var used) && used == v.Length ? value : null;

    public static LogHeader Of(string name, string value) => new(name, Encoding.UTF8.GetBytes(value));

    public static LogHeader Of(string name, long value) => new(name, Encoding.UTF8.GetBytes(value.ToString(CultureInfo.InvariantCulture)));

    /// <summary>The headers of <paramref name="source"/> other than Herald's bookkeeping ones.</summary>
    public static List<LogHeader> WithoutHerald(IReadOnlyList<LogHeader> source, int extra)
    {
        var list = new List<LogHeader>(source.Count + extra);
        for (var i = 0; i < source.Count; i++)
            if (!source[i].Key.StartsWith(HeaderNames.Prefix, StringComparison.Ordinal)) list.Add(source[i]);
        return list;
    }
}
