using System.Text;

namespace Herald.Log.Batches;

/// <summary>Header keys as strings without a new string per record for the common ones: the
/// CloudEvents and trace-context names that every Herald event carries are looked up in a fixed
/// table (pipeline benchmark: 6 to 9 headers per event).</summary>
internal static class HeaderKeys
{
    private static readonly string[] Known =
    [
        "ce_id", "ce_source", "ce_type", "ce_specversion", "ce_time", "content-type", "traceparent", "tracestate",
        "ce_correlationid", "ce_causationid", "ce_subject", "ce_dataschema",
    ];

    private static readonly byte[][] KnownUtf8 = Array.ConvertAll(Known, Encoding.UTF8.GetBytes);

    /// <summary>The UTF-8 bytes of a well-known key, or null for any other key. Keys are mostly
    /// the same string literals, so a reference comparison usually finds them (pipeline benchmark:
    /// encoding every key of every record was a fifth of the writer's record encoding).</summary>
    public static byte[]? KnownUtf8Of(string key)
    {
        for (var i = 0; i < Known.Length; i++)
            if (ReferenceEquals(Known[i], key)) return KnownUtf8[i];
        for (var i = 0; i < Known.Length; i++)
            if (string.Equals(Known[i], key, StringComparison.Ordinal)) return KnownUtf8[i];
        return null;
    }

    public static string Get(ReadOnlySpan<byte> key)
    {
        for (var i = 0; i < KnownUtf8.Length; i++)
            if (key.SequenceEqual(KnownUtf8[i])) return Known[i];
        return Encoding.UTF8.GetString(key);
    }
}
