using Herald.Log.Batches;
using Herald.Log.CrashWorker;

namespace Herald.Log.Tests.Crash;

/// <summary>Checks a crash-tested log after recovery: no corruption; every record of every
/// partition decodes and is exactly the record its key names (<see cref="CrashRecords"/>); offsets
/// are contiguous; each appender's records appear in sequence order and at most once; every
/// acknowledged record is at its acknowledged offset. It remembers each batch it has checked (base
/// offset, size, CRC-32C) so that a later pass proves those bytes unchanged by comparing the
/// stored CRC, which every read validates, instead of regenerating every record again.</summary>
internal sealed class CrashLogVerifier
{
    private const int ReadBytes = 1024 * 1024;
    private readonly List<BatchFingerprint>[] _batches;
    private readonly long[] _verifiedEnd;
    private readonly Dictionary<(int Run, int Appender), int> _nextSeq = [];
    private readonly Dictionary<(int Partition, long Offset), CrashRecordId> _pendingAcks = [];
    private readonly bool _contiguousSequences;

    /// <param name="contiguousSequences">True when no append may fail, so an appender's records
    /// in the log are exactly its sequence numbers 0, 1, 2, ... (up to what was in flight).</param>
    public CrashLogVerifier(bool contiguousSequences = true)
    {
        _contiguousSequences = contiguousSequences;
        _batches = new List<BatchFingerprint>[CrashRecords.Partitions];
        for (var p = 0; p < _batches.Length; p++) _batches[p] = [];
        _verifiedEnd = new long[CrashRecords.Partitions];
    }

    /// <summary>Records checked against the generator so far.</summary>
    public long Records { get; private set; }

    /// <summary>Acknowledged records found at their offsets so far.</summary>
    public long AcknowledgedRecords { get; private set; }

    public long Bytes { get; private set; }

    /// <summary>Ids that must not be in the log (their appends failed and the engine promises to
    /// drop what it did not acknowledge).</summary>
    public HashSet<CrashRecordId> Forbidden { get; } = [];

    /// <summary>Notes an acknowledgement; the next <see cref="Verify"/> requires the record there.</summary>
    public void Acknowledged(int partition, long offset, CrashRecordId id)
    {
        if (offset < _verifiedEnd[partition])
            throw new InvalidOperationException($"{id} acknowledged at {partition}/{offset}, below the end {_verifiedEnd[partition]} of the log already verified");
        if (!_pendingAcks.TryAdd((partition, offset), id))
            throw new InvalidOperationException($"{partition}/{offset} acknowledged twice: for {_pendingAcks[(partition, offset)]} and {id}");
    }

    /// <summary>Verifies the log. A full pass reads every batch; otherwise batches verified before
    /// are compared only over the last <paramref name="tailBytes"/> of each partition, and
    /// everything new is checked record by record. Throws describing the first problem found.</summary>
    public void Verify(EmbeddedLog log, bool fullPass = true, long tailBytes = 2 * 1024 * 1024)
    {
        if (!log.TryGetTopic(CrashRecords.TopicName, out var topic))
        {
            Check(_pendingAcks.Count == 0 && Records == 0, $"topic '{CrashRecords.TopicName}' is missing after {Records} records and {_pendingAcks.Count} new acknowledgements");
            return;
        }
        Check(topic.Partitions.Count == CrashRecords.Partitions, $"topic has {topic.Partitions.Count} partitions");
        var decoded = new List<LogRecord>();
        foreach (var partition in topic.Partitions)
        {
            var p = partition.Id;
            Check(partition.Recovery.Corruption is null, $"recovery of {partition} reported corruption: {partition.Recovery.Corruption?.Message}");
            Check(partition.Corruption is null, $"{partition} reports corruption: {partition.Corruption?.Message}");
            Check(partition.StartOffset == 0, $"{partition} starts at {partition.StartOffset}, but nothing deletes records");
            var end = partition.EndOffset;
            Check(end >= _verifiedEnd[p], $"{partition} ends at {end}, before {_verifiedEnd[p]} which was verified earlier: verified records were lost");

            var known = _batches[p];
            var k = fullPass ? 0 : TailStart(known, tailBytes);
            var offset = k < known.Count ? known[k].BaseOffset : 0;
            while (offset < end)
            {
                var read = partition.Read(offset, ReadBytes);
                Check(!read.IsEmpty, $"{partition}: reading offset {offset} below the end {end} returned nothing");
                var data = read.Batches;
                while (!data.IsEmpty)
                {
                    var header = RecordBatch.ReadHeader(data.Span);
                    var batch = data[..header.TotalSize];
                    data = data[header.TotalSize..];
                    Check(header.BaseOffset == offset, $"{partition}: batch at offset {header.BaseOffset} where offset {offset} was due (a gap or an overlap)");
                    var print = new BatchFingerprint(header.BaseOffset, header.TotalSize, header.Crc, header.RecordCount);
                    if (k < known.Count)
                    {
                        Check(print == known[k], $"{partition}: batch {k} is now {print}, it was {known[k]} when verified");
                    }
                    else
                    {
                        CheckNewBatch(partition, batch, header, decoded);
                        known.Add(print);
                    }
                    k++;
                    offset = header.NextOffset;
                }
            }
            Check(offset == end, $"{partition}: batches run to offset {offset}, past the end {end}");
            Check(k >= known.Count, $"{partition}: {known.Count - k} verified batches are missing at the end");
            _verifiedEnd[p] = end;
        }
        foreach (var ((p, offset), id) in _pendingAcks)
            Check(false, $"acknowledged {id} at {p}/{offset} is not in the log");
    }

    private void CheckNewBatch(LogPartition partition, ReadOnlyMemory<byte> batch, RecordBatchHeader header, List<LogRecord> decoded)
    {
        decoded.Clear();
        RecordBatchRecords.Decode(batch, 0, decoded);
        Check(decoded.Count == header.RecordCount && header.LastOffsetDelta == header.RecordCount - 1,
            $"{partition}: batch at {header.BaseOffset} holds {decoded.Count} records for {header.RecordCount} declared, last delta {header.LastOffsetDelta}");
        for (var i = 0; i < decoded.Count; i++)
        {
            var record = decoded[i];
            Check(record.Offset == header.BaseOffset + i, $"{partition}: record {i} of the batch at {header.BaseOffset} has offset {record.Offset}");
            var problem = CrashRecords.Check(record, partition.Id, out var id);
            Check(problem is null, $"{partition}: {problem}");
            Check(!Forbidden.Contains(id), $"{partition}: {id} at offset {record.Offset} is in the log, but its append failed");
            var key = (id.Run, id.Appender);
            var expected = _nextSeq.GetValueOrDefault(key);
            Check(_contiguousSequences ? id.Seq == expected : id.Seq >= expected,
                $"{partition}: {id} at offset {record.Offset}, but sequence {expected} of w{id.Run}-{id.Appender} was due{(_contiguousSequences ? "" : " at the earliest")}");
            _nextSeq[key] = id.Seq + 1;
            if (_pendingAcks.Remove((partition.Id, record.Offset), out var acked))
            {
                Check(acked == id, $"{partition}: offset {record.Offset} holds {id}, but {acked} was acknowledged there");
                AcknowledgedRecords++;
            }
            Records++;
        }
        Bytes += header.TotalSize;
    }

    private static int TailStart(List<BatchFingerprint> known, long tailBytes)
    {
        var k = known.Count;
        long bytes = 0;
        while (k > 0 && bytes < tailBytes) bytes += known[--k].Size;
        return k;
    }

    private static void Check(bool condition, string problem)
    {
        if (!condition) throw new Xunit.Sdk.XunitException("crash verification failed: " + problem);
    }

    private readonly record struct BatchFingerprint(long BaseOffset, int Size, uint Crc, int RecordCount);
}
