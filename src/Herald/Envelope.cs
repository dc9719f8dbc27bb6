using System.Globalization;
using Herald.Internal;
using Herald.Log;
using Herald.Transport;

namespace Herald;

/// <summary>An event's metadata as it was consumed: the CloudEvents attributes, trace context,
/// correlation and causation, and where the record sits. Values are read from the record's
/// headers when first asked for.</summary>
public sealed class Envelope
{
    private readonly IReadOnlyList<LogHeader> _headers;
    private readonly ReadOnlyMemory<byte>? _key;
    private string? _id, _type, _source, _correlationId, _causationId, _traceParent;

    internal Envelope(in TransportRecord record, string? originalTopic = null, int? originalPartition = null, long? originalOffset = null)
    {
        // Copies: the record's memory is reused once its handler has finished, the envelope may live on.
        _headers = record.Headers is RecordHeaders stored
            ? RecordHeaders.FromEncoded(stored.EncodedFields.ToArray(), stored.Count)
            : [.. record.Headers.Select(h => new LogHeader(h.Key, h.Value.ToArray()))];
        _key = record.Key?.ToArray();
        Topic = originalTopic ?? record.Topic;
        Partition = originalPartition ?? record.Partition;
        Offset = originalOffset ?? record.Offset;
        TimestampMs = record.TimestampMs;
    }

    /// <summary>The topic the event was published to (for a retried event, its original topic).</summary>
    public string Topic { get; }

    public int Partition { get; }

    /// <summary>The event's offset in <see cref="Topic"/>.</summary>
    public long Offset { get; }

    /// <summary>The record's timestamp, milliseconds since the Unix epoch.</summary>
    public long TimestampMs { get; }

    /// <summary><c>ce_id</c>: unique per event.</summary>
    public string Id => _id ??= Internal.Headers.String(_headers, HeaderNames.Id) ?? "";

    /// <summary><c>ce_type</c>: the event type name.</summary>
    public string Type => _type ??= Internal.Headers.String(_headers, HeaderNames.Type) ?? "";

    /// <summary><c>ce_dataversion</c>: the version of the event type's data the record was written
    /// at; 1 when the header is absent (records written before versioning existed). The handler gets
    /// the current version's type whatever this is: a lower number means the event was upcast.</summary>
    public int DataVersion =>
        Internal.Headers.Find(_headers, HeaderNames.DataVersion) is { } v && System.Buffers.Text.Utf8Parser.TryParse(v.Span, out int version, out var used) && used == v.Length ? version : 1;

    /// <summary><c>ce_source</c>: the publishing service.</summary>
    public string Source => _source ??= Internal.Headers.String(_headers, HeaderNames.Source) ?? "";

    public string SpecVersion => Internal.Headers.String(_headers, HeaderNames.SpecVersion) ?? "";

    public string? ContentType => Internal.Headers.String(_headers, HeaderNames.ContentType);

    /// <summary><c>ce_time</c>, when present and valid.</summary>
    public DateTimeOffset? Time =>
        Internal.Headers.String(_headers, HeaderNames.Time) is { } t && DateTimeOffset.TryParse(t, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var time) ? time : null;

    /// <summary>The W3C trace context of the publisher.</summary>
    public string? TraceParent => _traceParent ??= Internal.Headers.String(_headers, HeaderNames.TraceParent);

    /// <summary>The id shared by the events of one flow; an event published without one starts a flow with its own id.</summary>
    public string CorrelationId => _correlationId ??= Internal.Headers.String(_headers, HeaderNames.CorrelationId) ?? Id;

    /// <summary>The id of the event whose handler published this one, if any.</summary>
    public string? CausationId => _causationId ??= Internal.Headers.String(_headers, HeaderNames.CausationId);

    /// <summary>The record key (the partition key) as UTF-8 text, or null.</summary>
    public string? Key => _key is { } k ? System.Text.Encoding.UTF8.GetString(k.Span) : null;

    public ReadOnlyMemory<byte>? KeyBytes => _key;

    /// <summary>All record headers.</summary>
    public IReadOnlyList<LogHeader> Headers => _headers;
}
