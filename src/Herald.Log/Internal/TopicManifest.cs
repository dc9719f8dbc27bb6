using System.Text.Json;

namespace Herald.Log.Internal;

/// <summary>The topic's stored options (topic.json), written when the topic is created.</summary>
internal static class TopicManifest
{
    public const string FileName = "topic.json";

    public static byte[] Serialize(TopicOptions o)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("version", 1);
            w.WriteNumber("partitions", o.Partitions);
            w.WriteString("durability", o.Durability.ToString());
            w.WriteNumber("flushIntervalMs", (long)o.FlushInterval.TotalMilliseconds);
            w.WriteNumber("flushBytes", o.FlushBytes);
            w.WriteNumber("segmentBytes", o.SegmentBytes);
            w.WriteNumber("segmentAgeMs", (long)o.SegmentAge.TotalMilliseconds);
            w.WriteNumber("indexIntervalBytes", o.IndexIntervalBytes);
            w.WriteNumber("maxBatchBytes", o.MaxBatchBytes);
            w.WriteNumber("maxPendingBytes", o.MaxPendingBytes);
            w.WriteString("cleanup", o.Cleanup.ToString());
            if (o.RetentionBytes is { } rb) w.WriteNumber("retentionBytes", rb); else w.WriteNull("retentionBytes");
            if (o.RetentionTime is { } rt) w.WriteNumber("retentionMs", (long)rt.TotalMilliseconds); else w.WriteNull("retentionMs");
            w.WriteNumber("tombstoneRetentionMs", (long)o.TombstoneRetention.TotalMilliseconds);
            w.WriteNumber("compactionMaxKeys", o.CompactionMaxKeys);
            w.WriteEndObject();
        }
        return stream.ToArray();
    }

    public static TopicOptions Deserialize(string path, byte[] json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            var r = doc.RootElement;
            var o = new TopicOptions
            {
                Partitions = r.GetProperty("partitions").GetInt32(),
                Durability = Enum.Parse<DurabilityMode>(r.GetProperty("durability").GetString()!),
                FlushInterval = TimeSpan.FromMilliseconds(r.GetProperty("flushIntervalMs").GetInt64()),
                FlushBytes = r.GetProperty("flushBytes").GetInt64(),
                SegmentBytes = r.GetProperty("segmentBytes").GetInt64(),
                SegmentAge = TimeSpan.FromMilliseconds(r.GetProperty("segmentAgeMs").GetInt64()),
                IndexIntervalBytes = r.GetProperty("indexIntervalBytes").GetInt32(),
                MaxBatchBytes = r.GetProperty("maxBatchBytes").GetInt32(),
                MaxPendingBytes = r.GetProperty("maxPendingBytes").GetInt64(),
                Cleanup = Enum.Parse<CleanupPolicy>(r.GetProperty("cleanup").GetString()!),
                RetentionBytes = r.GetProperty("retentionBytes").ValueKind == JsonValueKind.Null ? null : r.GetProperty("retentionBytes").GetInt64(),
                RetentionTime = r.GetProperty("retentionMs").ValueKind == JsonValueKind.Null ? null : TimeSpan.FromMilliseconds(r.GetProperty("retentionMs").GetInt64()),
                TombstoneRetention = TimeSpan.FromMilliseconds(r.GetProperty("tombstoneRetentionMs").GetInt64()),
                CompactionMaxKeys = r.GetProperty("compactionMaxKeys").GetInt32(),
            };
            return o;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or ArgumentException or FormatException)
        {
            throw new LogCorruptionException(path, 0, $"topic manifest is unreadable: {e.Message}");
        }
    }
}
