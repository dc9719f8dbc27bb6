using System.Buffers.Binary;
using Herald.Log.Batches;
using Herald.Log.Tests.Batches;
using static Herald.Log.Tests.LogTestKit;

namespace Herald.Log.Tests.Partitions;

public class AppendBatchTests
{
    [Fact]
    public async Task AppendBatchAsync_stores_an_externally_built_batch_byte_for_byte_except_its_base_offset()
    {
        using var dir = new TempDirectory();
        var external = KafkaBatchVectors.Uncompressed();
        // A Kafka producer sends partition leader epoch -1; the broker stamps its own, as the log does (0).
        BinaryPrimitives.WriteInt32BigEndian(external.AsSpan(RecordBatch.PartitionLeaderEpochOffset), -1);
        RecordBatch.SetBaseOffset(external, 9_999); // whatever the producer put there, the log assigns

        await using (var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null }))
        {
            var p = log.GetOrCreateTopic("t")[0];
            await p.AppendAsync([Record("a", "1"), Record("b", "2"), Record("c", "3")]);

            var offset = await p.AppendBatchAsync(external);

            Assert.Equal(3, offset);
            Assert.Equal(4, p.EndOffset);
            AssertStoredAs(external, p.Read(3).Batches.ToArray(), assignedBase: 3);
            var record = Assert.Single(p.Read(3).Records());
            Assert.Equal(3, record.Offset);
            Assert.Equal(new byte[] { 5, 6, 7 }, record.Value!.Value.ToArray());
            Assert.Equal(KafkaBatchVectors.FirstTimestamp + 5, record.TimestampMs);

            // Appends go on after it with the next offsets.
            Assert.Equal(4, await p.AppendAsync(Record("d", "4")));
        }
        await using (var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null }))
        {
            var p = log.GetOrCreateTopic("t")[0];
            AssertStoredAs(external, p.Read(3, 1).Batches.ToArray(), assignedBase: 3);
            Assert.Equal(5, p.EndOffset);
        }
    }

    [Fact]
    public async Task AppendBatchAsync_gives_a_multi_record_batch_consecutive_offsets_from_the_end_of_the_log()
    {
        using var dir = new TempDirectory();
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        var p = log.GetOrCreateTopic("t")[0];
        await p.AppendAsync(Record("a", "1"));
        var batch = RecordBatchBuilder.Encode(0, [Record("x", "10", 5), Record(null, "11", 6), Record("z", null, 7)], 0);

        Assert.Equal(1, await p.AppendBatchAsync(batch));
        Assert.Equal(4, await p.AppendBatchAsync(batch));

        Assert.Equal(7, p.EndOffset);
        var records = ReadAll(p);
        Assert.Equal(Enumerable.Range(0, 7).Select(i => (long)i), records.Select(r => r.Offset));
        Assert.Equal(["a", "x", null, "z", "x", null, "z"], records.Select(r => Text(r.Key)));
        Assert.Equal(["1", "10", "11", null, "10", "11", null], records.Select(r => Text(r.Value)));
        Assert.Equal([5L, 6, 7, 5, 6, 7], records.Skip(1).Select(r => r.TimestampMs)); // the producer's timestamps, kept
        AssertStoredAs(batch, p.Read(4, 1).Batches.ToArray(), assignedBase: 4);
    }

    [Theory]
    [InlineData("bad CRC", "crc", RecordBatch.CrcOffset)]
    [InlineData("bad magic", "magic", RecordBatch.MagicOffset)]
    [InlineData("gzip compressed", "attributes", RecordBatch.AttributesOffset)]
    [InlineData("control batch", "attributes", RecordBatch.AttributesOffset)]
    [InlineData("no records", "lastOffsetDelta", RecordBatch.LastOffsetDeltaOffset)]
    [InlineData("length mismatch", "batchLength", RecordBatch.LengthOffset)]
    public async Task AppendBatchAsync_refuses_an_invalid_batch_naming_the_field(string damage, string field, int position)
    {
        using var dir = new TempDirectory();
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        var p = log.GetOrCreateTopic("t")[0];
        await p.AppendAsync(Record("a", "1"));
        var batch = KafkaBatchVectors.Uncompressed();
        switch (damage)
        {
            case "bad CRC": batch[^1] ^= 0x01; break;
            case "bad magic": batch[RecordBatch.MagicOffset] = 1; break;
            case "gzip compressed": batch = KafkaBatchVectors.Gzipped(); break;
            case "control batch": batch = WithAttributes(batch, RecordBatch.ControlFlag); break;
            case "no records": batch = RecordBatchBuilder.Encode(0, [], 0); break;
            case "length mismatch": batch = [.. batch, 0]; break;
        }

        var e = await Assert.ThrowsAsync<InvalidRecordBatchException>(async () => await p.AppendBatchAsync(batch));

        Assert.Equal((field, (long)position), (e.Field, e.Position));
        Assert.Contains($"'{field}'", e.Message, StringComparison.Ordinal);
        Assert.Equal(1, p.EndOffset);
        Assert.Equal(1, await p.AppendAsync(Record("b", "2")));
    }

    [Fact]
    public async Task AppendBatchAsync_refuses_a_batch_larger_than_MaxBatchBytes()
    {
        using var dir = new TempDirectory();
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        var p = log.GetOrCreateTopic("t", new TopicOptions { MaxBatchBytes = 1024, SegmentBytes = 4096 })[0];
        var batch = RecordBatchBuilder.Encode(0, [new NewRecord(null, new byte[1000])], 0);

        var e = await Assert.ThrowsAsync<RecordTooLargeException>(async () => await p.AppendBatchAsync(batch));

        Assert.Equal(batch.Length, e.Size);
        Assert.Equal(1024, e.Limit);
        Assert.Equal(0, p.EndOffset);
    }

    private static byte[] WithAttributes(byte[] batch, short attributes)
    {
        BinaryPrimitives.WriteInt16BigEndian(batch.AsSpan(RecordBatch.AttributesOffset), attributes);
        BinaryPrimitives.WriteUInt32BigEndian(batch.AsSpan(RecordBatch.CrcOffset), Crc32C.Compute(batch.AsSpan(RecordBatch.AttributesOffset)));
        return batch;
    }

    /// <summary>The stored batch equals the one sent except its base offset (assigned by the log)
    /// and its partition leader epoch (stamped by the log as a Kafka broker does); both lie outside
    /// the CRC, which still matches.</summary>
    private static void AssertStoredAs(byte[] sent, byte[] stored, long assignedBase)
    {
        Assert.True(stored.Length >= sent.Length);
        stored = stored[..sent.Length];
        Assert.Equal(assignedBase, ReadInt64(stored, RecordBatch.BaseOffsetOffset));
        Assert.Equal(sent.AsSpan(RecordBatch.LengthOffset, 4).ToArray(), stored.AsSpan(RecordBatch.LengthOffset, 4).ToArray());
        Assert.Equal(0, ReadInt32(stored, RecordBatch.PartitionLeaderEpochOffset));
        Assert.Equal(Convert.ToHexString(sent, RecordBatch.MagicOffset, sent.Length - RecordBatch.MagicOffset),
            Convert.ToHexString(stored, RecordBatch.MagicOffset, stored.Length - RecordBatch.MagicOffset));
        Assert.Null(RecordBatch.Validate(stored, stored.Length));
    }
}
