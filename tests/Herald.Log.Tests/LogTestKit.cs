using System.Buffers.Binary;
using System.Text;
using Herald.Log.Batches;

namespace Herald.Log.Tests;

/// <summary>Small helpers shared by the log tests: records from strings, reading a partition to
/// its end, and walking the batches of a segment file on disk.</summary>
internal static class LogTestKit
{
    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    public static string? Text(ReadOnlyMemory<byte>? bytes) => bytes is { } b ? Encoding.UTF8.GetString(b.Span) : null;

    /// <summary>A record from strings; a null key or value stays null (a byte[] that is null would
    /// convert to an empty ReadOnlyMemory, not to a null one).</summary>
    public static NewRecord Record(string? key, string? value, long timestampMs = -1) =>
        new(Bytes(key), Bytes(value), null, timestampMs);

    public static ReadOnlyMemory<byte>? Bytes(string? s) => s is null ? default(ReadOnlyMemory<byte>?) : Utf8(s);

    public static ReadOnlyMemory<byte>? Bytes(byte[]? b) => b is null ? default(ReadOnlyMemory<byte>?) : b;

    /// <summary>Every record from <paramref name="from"/> (default: the start) to <paramref name="to"/>
    /// (default: the end offset), reading whole batches, so a few records past <paramref name="to"/> may come too.</summary>
    public static List<LogRecord> ReadAll(LogPartition partition, long? from = null, int maxBytes = LogPartition.DefaultReadBytes, long? to = null)
    {
        var records = new List<LogRecord>();
        var offset = from ?? partition.StartOffset;
        var end = to ?? partition.EndOffset;
        while (offset < end)
        {
            var read = partition.Read(offset, maxBytes);
            Assert.True(read.NextOffset > offset, $"read at {offset} below the end offset {end} did not move forward");
            read.DecodeRecords(records);
            offset = read.NextOffset;
        }
        return records;
    }

    /// <summary>The batches stored in a segment file: position, size and header, in file order.</summary>
    public static List<StoredBatch> BatchesIn(string logPath)
    {
        var data = File.ReadAllBytes(logPath);
        var batches = new List<StoredBatch>();
        for (var p = 0; p + RecordBatch.HeaderSize <= data.Length;)
        {
            var header = RecordBatch.ReadHeader(data.AsSpan(p));
            if (header.TotalSize < RecordBatch.HeaderSize || p + header.TotalSize > data.Length) break;
            batches.Add(new StoredBatch(logPath, p, header));
            p += header.TotalSize;
        }
        return batches;
    }

    /// <summary>The segment files of a partition directory, oldest first.</summary>
    public static string[] SegmentFiles(string partitionDirectory) =>
        [.. Directory.GetFiles(partitionDirectory, "*.log").Order(StringComparer.Ordinal)];

    /// <summary>Flips every bit of the byte at <paramref name="position"/> of a closed file.</summary>
    public static void FlipByte(string path, long position)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        file.Position = position;
        var b = file.ReadByte();
        file.Position = position;
        file.WriteByte((byte)~b);
    }

    public static void Truncate(string path, long length)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        file.SetLength(length);
    }

    public static long ReadInt64(byte[] data, int at) => BinaryPrimitives.ReadInt64BigEndian(data.AsSpan(at));

    public static int ReadInt32(byte[] data, int at) => BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(at));

    /// <summary>Awaits <paramref name="task"/>, failing the test if it takes longer than <paramref name="seconds"/>.</summary>
    public static Task Within(this Task task, int seconds = 30) => task.WaitAsync(TimeSpan.FromSeconds(seconds));

    public static Task<T> Within<T>(this Task<T> task, int seconds = 30) => task.WaitAsync(TimeSpan.FromSeconds(seconds));
}

/// <summary>One batch found in a segment file.</summary>
internal readonly record struct StoredBatch(string File, long Position, RecordBatchHeader Header)
{
    public long End => Position + Header.TotalSize;

    /// <summary>A byte inside the batch's records (past the fixed header), covered by its CRC.</summary>
    public long RecordByte => Position + RecordBatch.HeaderSize + (Header.TotalSize - RecordBatch.HeaderSize) / 2;
}

/// <summary>A clock the test moves by hand: "now" for record timestamps, retention, segment age
/// and tombstone expiry. Monotonic timestamps stay real so the writer's flush timing works.</summary>
internal sealed class TestClock(DateTimeOffset start) : TimeProvider
{
    private long _utcTicks = start.UtcTicks;

    public TestClock() : this(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero)) { }

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _utcTicks), TimeSpan.Zero);

    public long NowMs => GetUtcNow().ToUnixTimeMilliseconds();

    public void Advance(TimeSpan by) => Interlocked.Add(ref _utcTicks, by.Ticks);
}
