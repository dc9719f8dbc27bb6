using System.Buffers.Binary;
using CsCheck;
using Herald.Log.Batches;
using static Herald.Log.Tests.LogTestKit;

namespace Herald.Log.Tests.Batches;

public class RecordBatchTests
{
    /// <summary>Two records: ("k", "v") and ("key-1", "value-1", header h=x), both at timestamp 1000.
    /// Record 0 is bytes 61..69, record 1 is bytes 70..92 (see <see cref="Record1"/>).</summary>
    private static byte[] TwoRecordBatch() => RecordBatchBuilder.Encode(7,
    [
        Record("k", "v", 1000),
        new NewRecord(Utf8("key-1"), Utf8("value-1"), [new LogHeader("h", Utf8("x"))], 1000),
    ], 0);

    private static class Record1
    {
        public const int Start = 70, OffsetDelta = 73, KeyLength = 74, ValueLength = 80, HeaderCount = 88, HeaderKeyLength = 89, End = 93;
    }

    [Fact]
    public void Encoded_batch_has_Kafka_RecordBatch_v2_header_fields_at_their_offsets()
    {
        var batch = RecordBatchBuilder.Encode(42,
        [
            Record("k", "v", 1000),
            Record(null, "value-2", 1003),
            new NewRecord(Utf8("k3"), null, [new LogHeader("h", new byte[] { 1, 2 })], 999),
        ], 5000);

        Assert.Equal(98, batch.Length);
        Assert.Equal(42, ReadInt64(batch, 0)); // baseOffset
        Assert.Equal(batch.Length - 12, ReadInt32(batch, 8)); // batchLength: bytes after this field
        Assert.Equal(0, ReadInt32(batch, 12)); // partitionLeaderEpoch
        Assert.Equal(2, batch[16]); // magic
        var crc = BinaryPrimitives.ReadUInt32BigEndian(batch.AsSpan(17));
        Assert.Equal(Crc32C.ComputeSoftware(batch.AsSpan(21)), crc); // CRC-32C from attributes to the end
        Assert.Equal(0, BinaryPrimitives.ReadInt16BigEndian(batch.AsSpan(21))); // attributes: no compression, CreateTime
        Assert.Equal(2, ReadInt32(batch, 23)); // lastOffsetDelta
        Assert.Equal(1000, ReadInt64(batch, 27)); // baseTimestamp: the first record's
        Assert.Equal(1003, ReadInt64(batch, 35)); // maxTimestamp
        Assert.Equal(-1, ReadInt64(batch, 43)); // producerId: none
        Assert.Equal(-1, BinaryPrimitives.ReadInt16BigEndian(batch.AsSpan(51))); // producerEpoch
        Assert.Equal(-1, ReadInt32(batch, 53)); // baseSequence
        Assert.Equal(3, ReadInt32(batch, 57)); // recordCount

        // Records: length, attributes, timestampDelta, offsetDelta, key, value, headers (zig-zag varints).
        Assert.Equal("10" + "00" + "00" + "00" + "026B" + "0276" + "00", Convert.ToHexString(batch, 61, 9));
        Assert.Equal("1A" + "00" + "06" + "02" + "01" + "0E" + Convert.ToHexString(Utf8("value-2")) + "00", Convert.ToHexString(batch, 70, 14));
        Assert.Equal("1A" + "00" + "01" + "04" + "046B33" + "01" + "02" + "0268" + "040102", Convert.ToHexString(batch, 84, 14));

        var header = RecordBatch.ReadHeader(batch);
        Assert.Equal(new RecordBatchHeader(42, 86, 2, crc, 0, 2, 1000, 1003, 3), header);
        Assert.Null(RecordBatch.Validate(batch, 1024));
    }

    [Fact]
    public void A_batch_encoded_by_another_Kafka_client_validates_and_decodes()
    {
        var batch = KafkaBatchVectors.Uncompressed();
        Assert.Null(RecordBatch.Validate(batch, 1024));
        var records = new List<LogRecord>();
        RecordBatchRecords.Decode(batch, 0, records);
        var r = Assert.Single(records);
        Assert.Equal(0, r.Offset);
        Assert.Equal(KafkaBatchVectors.FirstTimestamp + 5, r.TimestampMs);
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, r.Key!.Value.ToArray());
        Assert.Equal(new byte[] { 5, 6, 7 }, r.Value!.Value.ToArray());
        var h = Assert.Single(r.Headers);
        Assert.Equal("\b\t\n", h.Key);
        Assert.Equal(new byte[] { 11, 12 }, h.Value.ToArray());
    }

    [Fact]
    public void A_compressed_batch_passes_its_CRC_but_is_not_decoded()
    {
        var batch = KafkaBatchVectors.Gzipped();
        Assert.Null(RecordBatch.Validate(batch, 1024));
        var e = Assert.Throws<InvalidRecordBatchException>(() => RecordBatchRecords.Decode(batch, 0, []));
        Assert.Equal("attributes", e.Field);
        Assert.Equal(RecordBatch.AttributesOffset, e.Position);
    }

    private static readonly Gen<byte[]?> GenBytes = Gen.Frequency(
        (1, Gen.Const((byte[]?)null)),
        (1, Gen.Const<byte[]?>([])),
        (6, Gen.Byte.Array[1, 40].Select(b => (byte[]?)b)));

    private static readonly Gen<string> GenHeaderKey =
        Gen.Char["abcxyz-_.09é€"].Array[0, 6].Select(c => new string(c));

    private static readonly Gen<NewRecord> GenRecord =
        Gen.Select(GenBytes, GenBytes, Gen.Select(GenHeaderKey, Gen.Byte.Array[0, 8]).Array[0, 3], Gen.Long[0, 4_000_000_000_000])
            .Select((k, v, h, ts) => new NewRecord(
                Bytes(k), Bytes(v),
                h.Length == 0 ? null : h.Select(x => new LogHeader(x.Item1, x.Item2)).ToArray(),
                ts));

    [Fact]
    public void Encode_then_decode_round_trips_keys_values_headers_offsets_and_timestamps()
    {
        Gen.Select(GenRecord.Array[1, 25], Gen.Long[0, 1L << 40]).Sample((records, baseOffset) =>
        {
            var batch = RecordBatchBuilder.Encode(baseOffset, records, 0);
            Assert.Null(RecordBatch.Validate(batch, batch.Length));
            var header = RecordBatch.ReadHeader(batch);
            Assert.Equal(baseOffset, header.BaseOffset);
            Assert.Equal(records.Length, header.RecordCount);
            Assert.Equal(records.Length - 1, header.LastOffsetDelta);
            Assert.Equal(records[0].TimestampMs, header.BaseTimestamp);
            Assert.Equal(records.Max(r => r.TimestampMs), header.MaxTimestamp);

            var decoded = new List<LogRecord>();
            RecordBatchRecords.Decode(batch, 0, decoded);
            Assert.Equal(records.Length, decoded.Count);
            for (var i = 0; i < records.Length; i++)
            {
                var (sent, got) = (records[i], decoded[i]);
                Assert.Equal(baseOffset + i, got.Offset);
                Assert.Equal(sent.TimestampMs, got.TimestampMs);
                AssertBytes(sent.Key, got.Key);
                AssertBytes(sent.Value, got.Value);
                var sentHeaders = sent.Headers ?? [];
                Assert.Equal(sentHeaders.Count, got.Headers.Count);
                for (var h = 0; h < sentHeaders.Count; h++)
                {
                    Assert.Equal(sentHeaders[h].Key, got.Headers[h].Key);
                    Assert.Equal(sentHeaders[h].Value.ToArray(), got.Headers[h].Value.ToArray());
                }
            }

            // Decoding from an offset inside the batch keeps only the records at or after it.
            var from = baseOffset + records.Length / 2;
            var tail = new List<LogRecord>();
            RecordBatchRecords.Decode(batch, from, tail);
            Assert.Equal(Enumerable.Range(records.Length / 2, records.Length - records.Length / 2).Select(i => baseOffset + i), tail.Select(r => r.Offset));
        }, iter: 500);
    }

    [Fact]
    public void MaxEncodedSize_bounds_the_bytes_a_record_takes()
    {
        GenRecord.Sample(record =>
        {
            var batch = RecordBatchBuilder.Encode(0, [record], 0);
            return batch.Length - RecordBatch.HeaderSize <= RecordBatchBuilder.MaxEncodedSize(record);
        }, iter: 1000);
    }

    private static void AssertBytes(ReadOnlyMemory<byte>? expected, ReadOnlyMemory<byte>? actual)
    {
        Assert.Equal(expected is null, actual is null);
        if (expected is { } e) Assert.Equal(e.ToArray(), actual!.Value.ToArray());
    }

    [Theory]
    [InlineData("length field one larger", "batchLength", RecordBatch.LengthOffset)]
    [InlineData("cut short by one byte", "batchLength", RecordBatch.LengthOffset)]
    [InlineData("shorter than a header", "batchLength", RecordBatch.LengthOffset)]
    [InlineData("magic 1", "magic", RecordBatch.MagicOffset)]
    [InlineData("CRC byte flipped", "crc", RecordBatch.CrcOffset)]
    [InlineData("attributes byte flipped", "crc", RecordBatch.CrcOffset)]
    [InlineData("last offset delta byte flipped", "crc", RecordBatch.CrcOffset)]
    [InlineData("timestamp byte flipped", "crc", RecordBatch.CrcOffset)]
    [InlineData("producer id byte flipped", "crc", RecordBatch.CrcOffset)]
    [InlineData("record count byte flipped", "crc", RecordBatch.CrcOffset)]
    [InlineData("record value byte flipped", "crc", RecordBatch.CrcOffset)]
    public void Validate_names_the_field_and_offset_of_a_damaged_region(string damage, string field, int position)
    {
        var batch = TwoRecordBatch();
        batch = damage switch
        {
            "length field one larger" => Set32(batch, RecordBatch.LengthOffset, ReadInt32(batch, RecordBatch.LengthOffset) + 1),
            "cut short by one byte" => batch[..^1],
            "shorter than a header" => batch[..(RecordBatch.HeaderSize - 1)],
            "magic 1" => Set8(batch, RecordBatch.MagicOffset, 1),
            "CRC byte flipped" => Flip(batch, RecordBatch.CrcOffset + 2),
            "attributes byte flipped" => Flip(batch, RecordBatch.AttributesOffset + 1),
            "last offset delta byte flipped" => Flip(batch, RecordBatch.LastOffsetDeltaOffset + 3),
            "timestamp byte flipped" => Flip(batch, RecordBatch.MaxTimestampOffset + 7),
            "producer id byte flipped" => Flip(batch, RecordBatch.ProducerIdOffset),
            "record count byte flipped" => Flip(batch, RecordBatch.RecordCountOffset + 3),
            "record value byte flipped" => Flip(batch, Record1.ValueLength + 2),
            _ => throw new ArgumentOutOfRangeException(nameof(damage)),
        };
        var error = RecordBatch.Validate(batch, 1024);
        Assert.NotNull(error);
        Assert.Equal((field, position), (error.Field, error.Position));
    }

    [Theory]
    [InlineData("record count negative", "recordCount", RecordBatch.RecordCountOffset)]
    [InlineData("record count one short", "recordCount", RecordBatch.RecordCountOffset)]
    [InlineData("record count one over", "recordLength", Record1.End)]
    [InlineData("last offset delta negative", "lastOffsetDelta", RecordBatch.LastOffsetDeltaOffset)]
    [InlineData("last offset delta below a record's", "offsetDelta", Record1.OffsetDelta)]
    [InlineData("offset delta repeated", "offsetDelta", Record1.OffsetDelta)]
    [InlineData("record length past the batch", "recordLength", RecordBatch.HeaderSize)]
    [InlineData("key length past the record", "keyLength", Record1.KeyLength)]
    [InlineData("value length past the record", "valueLength", Record1.ValueLength)]
    [InlineData("header count negative", "headersCount", Record1.HeaderCount)]
    [InlineData("header key length past the record", "headers", Record1.HeaderKeyLength)]
    public void Validate_names_the_field_and_offset_of_a_malformed_batch_with_a_correct_CRC(string damage, string field, int position)
    {
        var batch = TwoRecordBatch();
        batch = damage switch
        {
            "record count negative" => Set32(batch, RecordBatch.RecordCountOffset, -1),
            "record count one short" => Set32(batch, RecordBatch.RecordCountOffset, 1),
            "record count one over" => Set32(batch, RecordBatch.RecordCountOffset, 3),
            "last offset delta negative" => Set32(batch, RecordBatch.LastOffsetDeltaOffset, -1),
            "last offset delta below a record's" => Set32(batch, RecordBatch.LastOffsetDeltaOffset, 0),
            "offset delta repeated" => Set8(batch, Record1.OffsetDelta, 0x00),
            "record length past the batch" => Set8(batch, RecordBatch.HeaderSize, 0x7E),
            "key length past the record" => Set8(batch, Record1.KeyLength, 0x7E),
            "value length past the record" => Set8(batch, Record1.ValueLength, 0x7E),
            "header count negative" => Set8(batch, Record1.HeaderCount, 0x01),
            "header key length past the record" => Set8(batch, Record1.HeaderKeyLength, 0x7E),
            _ => throw new ArgumentOutOfRangeException(nameof(damage)),
        };
        SealCrc(batch);
        var error = RecordBatch.Validate(batch, 1024);
        Assert.NotNull(error);
        Assert.Equal((field, position), (error.Field, error.Position));
    }

    [Fact]
    public void The_record_layout_the_malformed_batch_tests_rely_on_holds()
    {
        var batch = TwoRecordBatch();
        Assert.Equal(Record1.End, batch.Length);
        Assert.Equal(0x2C, batch[Record1.Start]); // record 1: 22 bytes
        Assert.Equal(0x02, batch[Record1.OffsetDelta]); // delta 1
        Assert.Equal(0x0A, batch[Record1.KeyLength]); // 5
        Assert.Equal(0x0E, batch[Record1.ValueLength]); // 7
        Assert.Equal(0x02, batch[Record1.HeaderCount]); // 1
        Assert.Equal(0x02, batch[Record1.HeaderKeyLength]); // 1
    }

    [Fact]
    public void Base_offset_and_leader_epoch_are_outside_the_CRC_so_they_can_be_rewritten()
    {
        var batch = TwoRecordBatch();
        RecordBatch.SetBaseOffset(batch, 123_456);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(RecordBatch.PartitionLeaderEpochOffset), -1);
        Assert.Null(RecordBatch.Validate(batch, 1024));
        Assert.Equal(123_456, RecordBatch.ReadHeader(batch).BaseOffset);
    }

    [Fact]
    public void A_batch_larger_than_the_limit_is_refused_on_its_length()
    {
        var batch = TwoRecordBatch();
        var error = RecordBatch.Validate(batch, batch.Length - 1);
        Assert.Equal(("batchLength", RecordBatch.LengthOffset), (error!.Field, error.Position));
        Assert.Null(RecordBatch.Validate(batch, batch.Length));
    }

    [Fact]
    public void Any_single_flipped_byte_in_the_CRC_covered_region_fails_validation()
    {
        var original = TwoRecordBatch();
        Gen.Select(Gen.Int[RecordBatch.AttributesOffset, original.Length - 1], Gen.Byte[1, 255]).Sample((at, mask) =>
        {
            var batch = (byte[])original.Clone();
            batch[at] ^= mask;
            return RecordBatch.Validate(batch, 1024) is { Field: "crc", Position: RecordBatch.CrcOffset };
        }, iter: 500);
    }

    private static byte[] Set32(byte[] batch, int at, int value)
    {
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(at), value);
        return batch;
    }

    private static byte[] Set8(byte[] batch, int at, byte value)
    {
        batch[at] = value;
        return batch;
    }

    private static byte[] Flip(byte[] batch, int at)
    {
        batch[at] ^= 0xFF;
        return batch;
    }

    private static void SealCrc(byte[] batch) =>
        BinaryPrimitives.WriteUInt32BigEndian(batch.AsSpan(RecordBatch.CrcOffset), Crc32C.Compute(batch.AsSpan(RecordBatch.AttributesOffset)));
}
