using System.Text;

namespace Herald.Log.Batches;

/// <summary>Reads the records of an uncompressed RecordBatch v2.</summary>
public static class RecordBatchRecords
{
    private static readonly LogHeader[] NoHeaders = [];

    /// <summary>Decodes every record of the batch in <paramref name="batch"/> whose offset is at
    /// least <paramref name="fromOffset"/>. Key and value slice <paramref name="batch"/>.</summary>
    public static void Decode(ReadOnlyMemory<byte> batch, long fromOffset, List<LogRecord> into) =>
        Decode(batch, fromOffset, into, null);

    /// <summary>As <see cref="Decode(ReadOnlyMemory{byte}, long, List{LogRecord})"/>, also giving each
    /// decoded record's stored bytes (length prefix included) so that they can be copied unchanged.</summary>
    internal static void Decode(ReadOnlyMemory<byte> batch, long fromOffset, List<LogRecord> into, List<Range>? storedBytes)
    {
        var header = RecordBatch.ReadHeader(batch.Span);
        if (header.Compression != 0)
            throw new InvalidRecordBatchException("attributes", RecordBatch.AttributesOffset,
                $"compression codec {header.Compression} is not supported by the embedded log; append uncompressed batches");
        var reader = new Reader(batch, RecordBatch.HeaderSize);
        for (var i = 0; i < header.RecordCount; i++)
        {
            var start = reader.Position;
            var length = reader.Int32("recordLength");
            var end = reader.Position + length;
            if (length < 0 || end > batch.Length) throw Reader.Error("recordLength", start, $"record length {length} runs past the batch");
            reader.Skip(1); // attributes
            var timestampDelta = reader.Int64("timestampDelta");
            var offsetDelta = reader.Int32("offsetDelta");
            var key = reader.Bytes("keyLength");
            var value = reader.Bytes("valueLength");
            var headerCount = reader.Int32("headersCount");
            if (headerCount < 0 || headerCount > length) throw Reader.Error("headersCount", reader.Position, $"header count {headerCount} is invalid");
            IReadOnlyList<LogHeader> headers = NoHeaders;
            if (headerCount > 0)
            {
                // Decoded lazily (RecordHeaders); the loop below only checks the framing.
                var headersStart = reader.Position;
                for (var h = 0; h < headerCount; h++)
                {
                    reader.Bytes("headerKeyLength");
                    reader.Bytes("headerValueLength");
                }
                if (header.BaseOffset + offsetDelta >= fromOffset)
                    headers = new RecordHeaders(batch[headersStart..reader.Position], headerCount);
            }
            if (reader.Position != end) throw Reader.Error("recordLength", start, $"record length {length} does not match its fields ({reader.Position - start} bytes)");
            var offset = header.BaseOffset + offsetDelta;
            if (offset >= fromOffset)
            {
                into.Add(new LogRecord(offset, header.BaseTimestamp + timestampDelta, key, value, headers));
                storedBytes?.Add(new Range(start, end));
            }
        }
    }

    /// <summary>Checks that the records of an uncompressed batch are framed as its header says.</summary>
    internal static BatchError? ValidateFraming(ReadOnlySpan<byte> batch, RecordBatchHeader header)
    {
        var pos = RecordBatch.HeaderSize;
        var lastDelta = -1;
        for (var i = 0; i < header.RecordCount; i++)
        {
            var start = pos;
            if (!Varint.TryRead(batch[pos..], out int length, out var n) || length < 0 || pos + n + length > batch.Length)
                return new BatchError("recordLength", start, $"record {i} length is malformed or runs past the batch");
            pos += n;
            var end = pos + length;
            var body = batch[..end];
            pos += 1;
            if (pos > end || !Varint.TryRead(body[pos..], out long _, out n)) return new BatchError("timestampDelta", pos, $"record {i} timestamp delta is malformed");
            pos += n;
            if (!Varint.TryRead(body[pos..], out int offsetDelta, out n)) return new BatchError("offsetDelta", pos, $"record {i} offset delta is malformed");
            if (offsetDelta <= lastDelta || offsetDelta > header.LastOffsetDelta)
                return new BatchError("offsetDelta", pos, $"record {i} offset delta {offsetDelta} is not increasing within [0, {header.LastOffsetDelta}]");
            lastDelta = offsetDelta;
            pos += n;
            if (!SkipBytes(body, ref pos)) return new BatchError("keyLength", pos, $"record {i} key is malformed");
            if (!SkipBytes(body, ref pos)) return new BatchError("valueLength", pos, $"record {i} value is malformed");
            if (!Varint.TryRead(body[pos..], out int headerCount, out n) || headerCount < 0) return new BatchError("headersCount", pos, $"record {i} header count is malformed");
            pos += n;
            for (var h = 0; h < headerCount; h++)
            {
                if (!SkipBytes(body, ref pos) || !SkipBytes(body, ref pos)) return new BatchError("headers", pos, $"record {i} header {h} is malformed");
            }
            if (pos != end) return new BatchError("recordLength", start, $"record {i} length does not match its fields");
        }
        if (pos != batch.Length) return new BatchError("recordCount", RecordBatch.RecordCountOffset, $"{batch.Length - pos} bytes follow the last of {header.RecordCount} records");
        return null;
    }

    private static bool SkipBytes(ReadOnlySpan<byte> body, ref int pos)
    {
        if (pos > body.Length || !Varint.TryRead(body[pos..], out int len, out var n)) return false;
        if (len < -1 || pos + n + Math.Max(len, 0) > body.Length) return false;
        pos += n + Math.Max(len, 0);
        return true;
    }

    private struct Reader(ReadOnlyMemory<byte> batch, int position)
    {
        public int Position = position;

        public int Int32(string field)
        {
            if (!Varint.TryRead(batch.Span[Position..], out int v, out var n)) throw Error(field, Position, "malformed varint");
            Position += n;
            return v;
        }

        public long Int64(string field)
        {
            if (!Varint.TryRead(batch.Span[Position..], out long v, out var n)) throw Error(field, Position, "malformed varint");
            Position += n;
            return v;
        }

        public void Skip(int n) => Position += n;

        public ReadOnlyMemory<byte>? Bytes(string field)
        {
            var at = Position;
            var len = Int32(field);
            if (len == -1) return null;
            if (len < -1 || Position + len > batch.Length) throw Error(field, at, $"length {len} runs past the batch");
            var slice = batch.Slice(Position, len);
            Position += len;
            return slice;
        }

        public static InvalidRecordBatchException Error(string field, int at, string reason) => new(field, at, reason);
    }
}
