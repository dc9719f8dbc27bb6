using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Herald.Log.CrashWorker;

/// <summary>The deterministic record generator shared by the crash worker and the crash tests:
/// a record's key, value, headers, timestamp and partition all derive from its
/// <see cref="CrashRecordId"/>, so that a reader can tell a record written whole from anything
/// else without having been told it was written.</summary>
public static class CrashRecords
{
    public const string TopicName = "crash";
    public const int Partitions = 2;
    public const int MaxValueBytes = 2000;
    private const long BaseTimestampMs = 1_700_000_000_000;

    /// <summary>Small segments and batches, so that segments roll during a short run.</summary>
    public static TopicOptions CreateTopicOptions(long segmentBytes = 256 * 1024, int maxBatchBytes = 64 * 1024) => new()
    {
        Partitions = Partitions,
        SegmentBytes = segmentBytes,
        MaxBatchBytes = maxBatchBytes,
    };

    public static int PartitionOf(CrashRecordId id) => id.Appender % Partitions;

    /// <summary>Appenders with this shape append several records per call (one batch), the others one.</summary>
    public static bool AppendsInBatches(int appender) => appender % 3 == 2;

    /// <summary>How many records the appender's call starting at <paramref name="seq"/> appends.</summary>
    public static int BatchSize(int run, int appender, int seq) =>
        AppendsInBatches(appender) ? 2 + (int)(Seed(new CrashRecordId(run, appender, seq)) % 5) : 1;

    public static NewRecord Create(CrashRecordId id)
    {
        var key = Encoding.ASCII.GetBytes(id.ToString());
        var seed = Seed(id);
        var length = (int)(seed % (MaxValueBytes + 1));
        byte[]? value = seed % 53 == 7 ? null : Fill(seed, length); // a tombstone now and then
        var digest = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(digest, seed);
        LogHeader[] headers = ((seed >> 20) % 3) switch
        {
            0 => [],
            1 => [new LogHeader("id", key)],
            _ => [new LogHeader("id", key), new LogHeader("seed", digest), new LogHeader("empty", ReadOnlyMemory<byte>.Empty)],
        };
        return new NewRecord(key, value, headers, BaseTimestampMs + id.Seq);
    }

    /// <summary>Null when <paramref name="record"/>, read from <paramref name="partition"/>, is
    /// exactly the record its key names; otherwise what is wrong with it.</summary>
    public static string? Check(in LogRecord record, int partition, out CrashRecordId id)
    {
        id = default;
        if (record.Key is not { } key) return $"offset {record.Offset}: null key";
        var keyText = Encoding.ASCII.GetString(key.Span);
        if (!CrashRecordId.TryParse(keyText, out id)) return $"offset {record.Offset}: key '{Printable(keyText)}' is not a generator id";
        if (PartitionOf(id) != partition) return $"offset {record.Offset}: {id} belongs in partition {PartitionOf(id)}, found in {partition}";
        var expected = Create(id);
        if (record.TimestampMs != expected.TimestampMs) return $"offset {record.Offset}: {id} timestamp {record.TimestampMs}, expected {expected.TimestampMs}";
        if (!SameBytes(record.Value, expected.Value)) return $"offset {record.Offset}: {id} value differs ({Describe(record.Value)} vs {Describe(expected.Value)})";
        var headers = expected.Headers!;
        if (record.Headers.Count != headers.Count) return $"offset {record.Offset}: {id} has {record.Headers.Count} headers, expected {headers.Count}";
        for (var i = 0; i < headers.Count; i++)
        {
            if (record.Headers[i].Key != headers[i].Key || !record.Headers[i].Value.Span.SequenceEqual(headers[i].Value.Span))
                return $"offset {record.Offset}: {id} header {i} '{record.Headers[i].Key}' differs from '{headers[i].Key}'";
        }
        return null;
    }

    private static bool SameBytes(ReadOnlyMemory<byte>? actual, ReadOnlyMemory<byte>? expected) =>
        actual is { } a ? expected is { } e && a.Span.SequenceEqual(e.Span) : expected is null;

    private static string Describe(ReadOnlyMemory<byte>? bytes) =>
        bytes is { } b ? string.Create(CultureInfo.InvariantCulture, $"{b.Length} bytes") : "null";

    private static string Printable(string text) =>
        text.Length > 40 || text.Any(char.IsControl) ? Convert.ToHexString(Encoding.Latin1.GetBytes(text[..Math.Min(text.Length, 40)])) : text;

    /// <summary>SplitMix64 of the id: stable across runtimes, unlike <see cref="Random"/> with a seed.</summary>
    private static ulong Seed(CrashRecordId id) =>
        Mix(((ulong)(uint)id.Run << 40) ^ ((ulong)(uint)id.Appender << 24) ^ (uint)id.Seq);

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }

    private static byte[] Fill(ulong seed, int length)
    {
        var bytes = new byte[length];
        var state = seed;
        Span<byte> word = stackalloc byte[8];
        for (var i = 0; i < length; i += 8)
        {
            state = Mix(state);
            BinaryPrimitives.WriteUInt64LittleEndian(word, state);
            word[..Math.Min(8, length - i)].CopyTo(bytes.AsSpan(i));
        }
        return bytes;
    }
}
