using System.Text;
using Herald.Log;

namespace Herald.Tests.Kit;

/// <summary>A record as stored in the log, with its headers decoded to text.</summary>
public sealed record RawRecord(int Partition, long Offset, string? Key, string? Value, IReadOnlyDictionary<string, string> Headers)
{
    public string? Header(string name) => Headers.GetValueOrDefault(name);
}

/// <summary>Reads a topic straight from the embedded log, bypassing Herald.</summary>
public static class RawRecords
{
    public static List<RawRecord> ReadAll(EmbeddedLog log, string topic)
    {
        ArgumentNullException.ThrowIfNull(log);
        if (!log.TryGetTopic(topic, out var t)) throw new InvalidOperationException($"topic '{topic}' does not exist in {log.Directory}");
        var result = new List<RawRecord>();
        var records = new List<LogRecord>();
        foreach (var partition in t.Partitions)
        {
            var offset = partition.StartOffset;
            var end = partition.EndOffset;
            while (offset < end)
            {
                var read = partition.Read(offset);
                if (read.IsEmpty) break;
                records.Clear();
                read.DecodeRecords(records);
                foreach (var r in records)
                {
                    if (r.Offset >= end) break;
                    var headers = new Dictionary<string, string>(StringComparer.Ordinal);
                    foreach (var h in r.Headers) headers[h.Key] = Encoding.UTF8.GetString(h.Value.Span); // a repeated header: the last wins
                    result.Add(new RawRecord(partition.Id, r.Offset, Text(r.Key), Text(r.Value), headers));
                }
                offset = read.NextOffset;
            }
        }
        return result;
    }

    private static string? Text(ReadOnlyMemory<byte>? bytes) => bytes is { } b ? Encoding.UTF8.GetString(b.Span) : null;
}
