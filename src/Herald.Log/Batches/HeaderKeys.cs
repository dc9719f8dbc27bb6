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

    public static string Get(ReadOnlySpan<byte> key)
    {
        for (var i = 0; i < KnownUtf8.Length; i++)
            if (key.SequenceEqual(KnownUtf8[i])) return Known[i];
        return Encoding.UTF8.GetString(key);
    }
}
