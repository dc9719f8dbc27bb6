using System.Buffers.Binary;

namespace Herald.Log.Batches;

/// <summary>Kafka's RecordBatch v2 layout (magic 2). All integers are big-endian; the CRC-32C
/// covers everything from <see cref="AttributesOffset"/> to the end of the batch, so the base
/// offset and leader epoch can be rewritten without touching it.</summary>
public static class RecordBatch
{
    public const int BaseOffsetOffset = 0;
    public const int LengthOffset = 8;
    public const int PartitionLeaderEpochOffset = 12;
    public const int MagicOffset = 16;
    public const int CrcOffset = 17;
    public const int AttributesOffset = 21;
    public const int LastOffsetDeltaOffset = 23;
    public const int BaseTimestampOffset = 27;
    public const int MaxTimestampOffset = 35;
    public const int ProducerIdOffset = 43;
    public const int ProducerEpochOffset = 51;
    public const int BaseSequenceOffset = 53;
    public const int RecordCountOffset = 57;

    /// <summary>Bytes before the first record.</summary>
    public const int HeaderSize = 61;

    /// <summary>Base offset and length: the bytes not counted by the length field.</summary>
    public const int LogOverhead = 12;

    public const byte CurrentMagic = 2;
    public const short CompressionMask = 0x07;
    public const short TimestampTypeMask = 0x08;
    public const short TransactionalFlag = 0x10;
    public const short ControlFlag = 0x20;

    /// <summary>Reads the header fields of the batch at the start of <paramref name="batch"/>
    /// (at least <see cref="HeaderSize"/> bytes) without validating it.</summary>
    public static RecordBatchHeader ReadHeader(ReadOnlySpan<byte> batch) => new(
        BinaryPrimitives.ReadInt64BigEndian(batch[BaseOffsetOffset..]),
        BinaryPrimitives.ReadInt32BigEndian(batch[LengthOffset..]),
        batch[MagicOffset],
        BinaryPrimitives.ReadUInt32BigEndian(batch[CrcOffset..]),
        BinaryPrimitives.ReadInt16BigEndian(batch[AttributesOffset..]),
        BinaryPrimitives.ReadInt32BigEndian(batch[LastOffsetDeltaOffset..]),
        BinaryPrimitives.ReadInt64BigEndian(batch[BaseTimestampOffset..]),
        BinaryPrimitives.ReadInt64BigEndian(batch[MaxTimestampOffset..]),
        BinaryPrimitives.ReadInt32BigEndian(batch[RecordCountOffset..]));

    /// <summary>The total size of the batch starting at <paramref name="batch"/>, read from its
    /// length field; -1 if fewer than <see cref="LogOverhead"/> bytes are present.</summary>
    public static long TotalSize(ReadOnlySpan<byte> batch) =>
        batch.Length < LogOverhead ? -1 : LogOverhead + (long)BinaryPrimitives.ReadInt32BigEndian(batch[LengthOffset..]);

    /// <summary>Checks the batch that fills <paramref name="batch"/> exactly: length, magic, CRC,
    /// and, when uncompressed, that its records are framed as its header says. Returns null when
    /// valid, otherwise the failing field and its byte offset within the batch.</summary>
    public static BatchError? Validate(ReadOnlySpan<byte> batch, int maxBatchBytes) => Validate(batch, maxBatchBytes, checkRecords: true);

    /// <summary>As <see cref="Validate(ReadOnlySpan{byte}, int)"/>; with <paramref name="checkRecords"/>
    /// false the records' framing is not walked: for batches read back whose CRC matches, since
    /// their framing was checked when they were appended (pipeline benchmark: the walk was a fifth
    /// of a read's cost). Decoding still checks every length against the batch.</summary>
    internal static BatchError? Validate(ReadOnlySpan<byte> batch, int maxBatchBytes, bool checkRecords)
    {
        if (batch.Length < HeaderSize)
            return new BatchError("batchLength", LengthOffset, $"a batch needs at least {HeaderSize} bytes, found {batch.Length}");
        var length = BinaryPrimitives.ReadInt32BigEndian(batch[LengthOffset..]);
        if (length < HeaderSize - LogOverhead || (long)length + LogOverhead > maxBatchBytes)
            return new BatchError("batchLength", LengthOffset, $"length {length} is outside [{HeaderSize - LogOverhead}, {maxBatchBytes - LogOverhead}]");
        if (length + LogOverhead != batch.Length)
            return new BatchError("batchLength", LengthOffset, $"length {length} does not match the {batch.Length - LogOverhead} bytes present");
        if (batch[MagicOffset] != CurrentMagic)
            return new BatchError("magic", MagicOffset, $"magic {batch[MagicOffset]} is not {CurrentMagic}");
        var stored = BinaryPrimitives.ReadUInt32BigEndian(batch[CrcOffset..]);
        var actual = Crc32C.Compute(batch[AttributesOffset..]);
        if (stored != actual)
            return new BatchError("crc", CrcOffset, $"stored CRC-32C 0x{stored:x8} does not match computed 0x{actual:x8}");
        var header = ReadHeader(batch);
        if (header.RecordCount < 0)
            return new BatchError("recordCount", RecordCountOffset, $"record count {header.RecordCount} is negative");
        if (header.LastOffsetDelta < 0)
            return new BatchError("lastOffsetDelta", LastOffsetDeltaOffset, $"last offset delta {header.LastOffsetDelta} is negative");
        if (header.Compression != 0 || !checkRecords) return null; // compressed records are checked by their codec
        return RecordBatchRecords.ValidateFraming(batch, header);
    }

    /// <summary>Writes a new base offset into a batch (not covered by the CRC).</summary>
    public static void SetBaseOffset(Span<byte> batch, long baseOffset) =>
        BinaryPrimitives.WriteInt64BigEndian(batch[BaseOffsetOffset..], baseOffset);
}

/// <summary>The fixed header of a RecordBatch v2.</summary>
public readonly record struct RecordBatchHeader(
    long BaseOffset,
    int Length,
    byte Magic,
    uint Crc,
    short Attributes,
    int LastOffsetDelta,
    long BaseTimestamp,
    long MaxTimestamp,
    int RecordCount)
{
    public long LastOffset => BaseOffset + LastOffsetDelta;
    public long NextOffset => BaseOffset + LastOffsetDelta + 1;
    /// <summary>Length plus <see cref="RecordBatch.LogOverhead"/>; saturates for a damaged length
    /// near int.MaxValue so that range checks reject it instead of wrapping negative.</summary>
    public int TotalSize => Length > int.MaxValue - RecordBatch.LogOverhead ? int.MaxValue : Length + RecordBatch.LogOverhead;
    public int Compression => Attributes & RecordBatch.CompressionMask;
    public bool IsControl => (Attributes & RecordBatch.ControlFlag) != 0;
}

/// <summary>Why a batch is invalid: the field, its byte offset within the batch, and the reason.</summary>
public sealed record BatchError(string Field, int Position, string Reason);
