using System.Buffers.Binary;
using System.Text;

namespace Herald.Log.Batches;

/// <summary>Encodes records into RecordBatch v2 batches in a caller-owned buffer. One builder
/// writes one batch at a time: <see cref="Begin"/>, <see cref="TryAdd"/> records, <see cref="Finish"/>.</summary>
internal sealed class RecordBatchBuilder
{
    /// <summary>The most bytes a record's framing adds beyond key, value and header bytes.</summary>
    private const int MaxRecordOverhead = 5 + 1 + 10 + 5 + 5 + 5 + 5;
    private const int MaxHeaderOverhead = 10;

    private byte[] _buffer = [];
    private int _start;
    private int _position;
    private int _limit;
    private long _baseOffset;
    private long _baseTimestamp;
    private long _maxTimestamp;
    private int _count;
    private int _lastOffsetDelta;

    public bool IsOpen { get; private set; }
    public int Count => _count;
    public long NextOffset => _baseOffset + _lastOffsetDelta + 1;
    public int Size => _position - _start;

    /// <summary>An upper bound on the bytes <paramref name="record"/> takes in a batch.</summary>
    public static int MaxEncodedSize(in NewRecord record)
    {
        long size = MaxRecordOverhead + (record.Key?.Length ?? 0) + (record.Value?.Length ?? 0);
        if (record.Headers is IEncodedHeaders encoded) size += MaxHeaderOverhead + encoded.EncodedFields.Length;
        else if (record.Headers is { } headers)
        {
            for (var i = 0; i < headers.Count; i++)
                size += MaxHeaderOverhead + Encoding.UTF8.GetMaxByteCount(headers[i].Key.Length) + headers[i].Value.Length;
        }
        return size > int.MaxValue ? int.MaxValue : (int)size;
    }

    /// <summary>Starts a batch at <paramref name="start"/> in <paramref name="buffer"/>; the batch
    /// may use bytes up to <paramref name="limit"/>.</summary>
    public void Begin(byte[] buffer, int start, int limit, long baseOffset, long baseTimestamp)
    {
        _buffer = buffer;
        _start = start;
        _position = start + RecordBatch.HeaderSize;
        _limit = limit;
        _baseOffset = baseOffset;
        _baseTimestamp = baseTimestamp;
        _maxTimestamp = baseTimestamp;
        _count = 0;
        _lastOffsetDelta = -1;
        IsOpen = true;
    }

    /// <summary>Appends a record if it fits below the limit; false leaves the batch unchanged.
    /// Offsets are consecutive unless <paramref name="offsetDelta"/> is given (compaction keeps
    /// the surviving records' original offsets).</summary>
    public bool TryAdd(in NewRecord record, long timestamp, int offsetDelta = -1)
    {
        var tsDelta = timestamp - _baseTimestamp;
        if (offsetDelta < 0) offsetDelta = _lastOffsetDelta + 1;
        var keyLen = record.Key?.Length ?? -1;
        var valueLen = record.Value?.Length ?? -1;
        var headers = record.Headers;
        var headerCount = headers?.Count ?? 0;

        var bodySize = 1 + Varint.SizeOf(tsDelta) + Varint.SizeOf(offsetDelta)
            + Varint.SizeOf(keyLen) + Math.Max(keyLen, 0)
            + Varint.SizeOf(valueLen) + Math.Max(valueLen, 0)
            + Varint.SizeOf(headerCount);
        var encoded = headers as IEncodedHeaders; // already in the stored form: copied as it is
        if (encoded is not null) bodySize += encoded.EncodedFields.Length;
        else for (var i = 0; i < headerCount; i++)
        {
            var hk = Encoding.UTF8.GetByteCount(headers![i].Key);
            var hv = headers[i].Value.Length;
            bodySize += Varint.SizeOf(hk) + hk + Varint.SizeOf(hv) + hv;
        }
        var total = Varint.SizeOf(bodySize) + bodySize;
        if (_position + total > _limit) return false;

        var span = _buffer.AsSpan(_position, total);
        var p = Varint.Write(span, bodySize);
        span[p++] = 0; // record attributes: unused in v2
        p += Varint.Write(span[p..], tsDelta);
        p += Varint.Write(span[p..], offsetDelta);
        p += Varint.Write(span[p..], keyLen);
        if (keyLen > 0) { record.Key!.Value.Span.CopyTo(span[p..]); p += keyLen; }
        p += Varint.Write(span[p..], valueLen);
        if (valueLen > 0) { record.Value!.Value.Span.CopyTo(span[p..]); p += valueLen; }
        p += Varint.Write(span[p..], headerCount);
        if (encoded is not null)
        {
            var fields = encoded.EncodedFields;
            fields.CopyTo(span[p..]);
            p += fields.Length;
        }
        else for (var i = 0; i < headerCount; i++)
        {
            var header = headers![i];
            p += Varint.Write(span[p..], Encoding.UTF8.GetByteCount(header.Key));
            p += Encoding.UTF8.GetBytes(header.Key, span[p..]);
            p += Varint.Write(span[p..], header.Value.Length);
            header.Value.Span.CopyTo(span[p..]);
            p += header.Value.Length;
        }
        _position += total;
        if (timestamp > _maxTimestamp) _maxTimestamp = timestamp;
        _lastOffsetDelta = offsetDelta;
        _count++;
        return true;
    }

    /// <summary>Writes the header and CRC; returns the batch's total size. A compacted batch keeps
    /// its original <paramref name="lastOffsetDelta"/> even when its last records are gone.</summary>
    public int Finish(int lastOffsetDelta = -1)
    {
        var batch = _buffer.AsSpan(_start, _position - _start);
        BinaryPrimitives.WriteInt64BigEndian(batch[RecordBatch.BaseOffsetOffset..], _baseOffset);
        BinaryPrimitives.WriteInt32BigEndian(batch[RecordBatch.LengthOffset..], batch.Length - RecordBatch.LogOverhead);
        BinaryPrimitives.WriteInt32BigEndian(batch[RecordBatch.PartitionLeaderEpochOffset..], 0);
        batch[RecordBatch.MagicOffset] = RecordBatch.CurrentMagic;
        BinaryPrimitives.WriteInt16BigEndian(batch[RecordBatch.AttributesOffset..], 0);
        BinaryPrimitives.WriteInt32BigEndian(batch[RecordBatch.LastOffsetDeltaOffset..], Math.Max(lastOffsetDelta, _lastOffsetDelta));
        BinaryPrimitives.WriteInt64BigEndian(batch[RecordBatch.BaseTimestampOffset..], _baseTimestamp);
        BinaryPrimitives.WriteInt64BigEndian(batch[RecordBatch.MaxTimestampOffset..], _maxTimestamp);
        BinaryPrimitives.WriteInt64BigEndian(batch[RecordBatch.ProducerIdOffset..], -1);
        BinaryPrimitives.WriteInt16BigEndian(batch[RecordBatch.ProducerEpochOffset..], -1);
        BinaryPrimitives.WriteInt32BigEndian(batch[RecordBatch.BaseSequenceOffset..], -1);
        BinaryPrimitives.WriteInt32BigEndian(batch[RecordBatch.RecordCountOffset..], _count);
        BinaryPrimitives.WriteUInt32BigEndian(batch[RecordBatch.CrcOffset..], Crc32C.Compute(batch[RecordBatch.AttributesOffset..]));
        IsOpen = false;
        return batch.Length;
    }

    /// <summary>Drops the batch being built (its bytes are never written).</summary>
    public void Abandon() => IsOpen = false;

    /// <summary>Encodes <paramref name="records"/> as one batch into a new array (tests, tools).</summary>
    public static byte[] Encode(long baseOffset, IReadOnlyList<NewRecord> records, long timestampMs)
    {
        long size = RecordBatch.HeaderSize;
        for (var i = 0; i < records.Count; i++) size += MaxEncodedSize(records[i]);
        var buffer = new byte[size];
        var builder = new RecordBatchBuilder();
        builder.Begin(buffer, 0, buffer.Length, baseOffset, records.Count > 0 && records[0].TimestampMs >= 0 ? records[0].TimestampMs : timestampMs);
        for (var i = 0; i < records.Count; i++)
        {
            var ts = records[i].TimestampMs >= 0 ? records[i].TimestampMs : timestampMs;
            if (!builder.TryAdd(records[i], ts)) throw new InvalidOperationException("record did not fit its computed bound");
        }
        var length = builder.Finish();
        return buffer.AsSpan(0, length).ToArray();
    }
}
