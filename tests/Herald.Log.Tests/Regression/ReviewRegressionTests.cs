using System.Buffers;
using System.Buffers.Binary;
using Herald.Log.Batches;
using Herald.Log.Internal;
using Herald.Log.Segments;
using Herald.Log.Tests.Faults;
using static Herald.Log.Tests.LogTestKit;

namespace Herald.Log.Tests.Regression;

/// <summary>The defects the review of the first Herald.Log tests found (fixed in 9d3dd9a), each
/// pinned at the exact moment it struck: <see cref="FaultInjectingFileSystem.BeforeOperation"/>
/// holds the writer in the fsync of a segment it just rolled to, or a reader in the middle of a
/// read, while the test does what must not hurt it. Two of them also failed on 9d3dd9a itself, for
/// the engine fixes made with them: an empty read that did not move on, and compaction passes that
/// mapped the same first keys again and again.</summary>
public sealed class ReviewRegressionTests
{
    private static readonly TimeSpan TombstoneRetention = TimeSpan.FromDays(7);

    private static EmbeddedLogOptions LogOptions(TestClock clock) => new() { TimeProvider = clock, MaintenanceInterval = null };

    /// <summary>About eleven of the records below fill a segment.</summary>
    private static TopicOptions Compacted() => new()
    {
        Cleanup = CleanupPolicy.Compact,
        MaxBatchBytes = 1024,
        SegmentBytes = 2048,
        SegmentAge = TimeSpan.FromHours(1),
        TombstoneRetention = TombstoneRetention,
    };

    /// <summary>Retention that deletes every sealed segment it may.</summary>
    private static TopicOptions RetainNothing() => new() { MaxBatchBytes = 1024, SegmentBytes = 2048, RetentionBytes = 0 };

    private static string Value(long n) => $"{n}:" + new string('v', 100);

    private static IOException Injected(FileOperation op) => new($"Input/output error (injected {op.Kind} fault) : '{op.Path}'", 5);

    /// <summary>The writer's fsync of a segment created after <paramref name="existing"/> once it holds
    /// data: the end of a group that rolled to that segment, before anything of it is acknowledged.</summary>
    private static bool IsGroupSyncOfNewSegment(FileOperation op, HashSet<string> existing) =>
        op.Kind == FileOperationKind.Sync && op.FileName.EndsWith(".log", StringComparison.Ordinal)
        && !existing.Contains(op.FileName) && op.Length > 0;

    private static HashSet<string> SegmentNames(LogPartition p) => [.. p.Segments.Select(s => Path.GetFileName(s.LogPath))];

    private static List<(long Offset, string Key, string? Value)> Contents(LogPartition p, long? from = null) =>
        [.. ReadAll(p, from).Select(r => (r.Offset, Text(r.Key)!, Text(r.Value)))];

    [Fact]
    public async Task Compaction_while_a_group_that_rolled_a_segment_awaits_its_fsync_keeps_every_record_of_that_group()
    {
        using var dir = new TempDirectory("review");
        var clock = new TestClock();
        var fs = new FaultInjectingFileSystem(PosixFileSystem.Instance);
        await using var log = EmbeddedLog.Open(dir.Path, LogOptions(clock), fs);
        var p = log.GetOrCreateTopic("t", Compacted())[0];
        var written = new List<(long Offset, string Key, string? Value)>();
        for (var i = 0; i < 10; i++) written.Add((await p.AppendAsync(Record("dup", Value(i))), "dup", Value(i)));
        var group = Enumerable.Range(10, 6).Select(i => (Offset: (long)i, Key: $"g{i}", Value: (string?)Value(i))).ToList();
        written.AddRange(group);

        using var pause = new FilePause();
        var existing = SegmentNames(p);
        fs.BeforeOperation = op => { if (IsGroupSyncOfNewSegment(op, existing)) pause.Hold(); };
        var appending = p.AppendAsync(group.Select(g => Record(g.Key, g.Value)).ToArray()).AsTask();
        await pause.Reached.Within(10);
        // The group's first records sit past the committed end of the segment it rolled away from.
        Assert.InRange(p.Segments[^1].BaseOffset, 11, 15);
        Assert.Equal(10, p.EndOffset);

        // Before 9d3dd9a this rewrote that segment from its committed bytes alone, and the group's
        // records in it were gone once the group was acknowledged.
        await log.RunMaintenanceAsync();
        pause.Release();
        Assert.Equal(10, await appending.Within(10));
        fs.BeforeOperation = null;

        Assert.Equal(written, Contents(p));
        Assert.Equal(9, (await log.RunMaintenanceAsync()).RecordsCompacted); // now the superseded dups go
        Assert.Equal(written.Skip(9), Contents(p, from: 9));
    }

    [Fact]
    public async Task Retention_while_a_group_that_rolled_a_segment_awaits_its_fsync_keeps_that_segment_and_a_failure_of_the_group_leaves_offsets_contiguous()
    {
        using var dir = new TempDirectory("review");
        var clock = new TestClock();
        var fs = new FaultInjectingFileSystem(PosixFileSystem.Instance);
        var written = new List<(long Offset, string Key, string? Value)>();
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions(clock), fs))
        {
            var p = log.GetOrCreateTopic("t", RetainNothing())[0];
            for (var i = 0; i < 10; i++) written.Add((await p.AppendAsync(Record($"k{i}", Value(i))), $"k{i}", Value(i)));

            using var pause = new FilePause();
            var existing = SegmentNames(p);
            var armed = 1;
            fs.BeforeOperation = op =>
            {
                if (!IsGroupSyncOfNewSegment(op, existing) || Interlocked.Exchange(ref armed, 0) == 0) return;
                pause.Hold();
                throw Injected(op);
            };
            var appending = p.AppendAsync(Enumerable.Range(0, 6).Select(i => Record($"failed{i}", Value(i))).ToArray()).AsTask();
            await pause.Reached.Within(10);

            // Before 9d3dd9a this deleted the segment the group had rolled away from; the failed group's
            // reopen then kept the group's new segment, and the next append got an offset past a gap.
            await log.RunMaintenanceAsync();
            pause.Release();
            await Assert.ThrowsAsync<LogWriteFailedException>(() => appending.Within(10));

            Assert.Equal(10, p.EndOffset);
            var after = await p.AppendAsync(Record("after", Value(10))).AsTask().Within(10);
            written.Add((after, "after", Value(10)));
            Assert.Equal(10, after);
            Assert.Equal(0, p.StartOffset);
            Assert.Equal(written, Contents(p));
        }
        await using (var reopened = EmbeddedLog.Open(dir.Path, LogOptions(clock)))
            Assert.Equal(written, Contents(reopened.GetOrCreateTopic("t")[0]));
    }

    [Fact]
    public async Task A_failed_group_that_rolled_a_segment_reopens_by_base_offset_after_retention_removed_older_segments()
    {
        using var dir = new TempDirectory("review");
        var clock = new TestClock();
        var fs = new FaultInjectingFileSystem(PosixFileSystem.Instance);
        var written = new List<(long Offset, string Key, string? Value)>();
        long start;
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions(clock), fs))
        {
            var p = log.GetOrCreateTopic("t", RetainNothing())[0];
            for (var i = 0; i < 25; i++) written.Add((await p.AppendAsync(Record($"k{i}", Value(i))), $"k{i}", Value(i)));
            Assert.Equal(3, p.SegmentCount);
            start = p.Segments[^1].BaseOffset; // the segment of the last acknowledged record must stay

            // The fsync that ends a group rolled into a new segment fails, and so does the reopen's fsync:
            // the partition waits, faulted, for its next append, while retention runs.
            var existing = SegmentNames(p);
            var stage = 0;
            var reopenFailed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            fs.BeforeOperation = op =>
            {
                if (op.Kind != FileOperationKind.Sync || !op.FileName.EndsWith(".log", StringComparison.Ordinal)) return;
                if (stage == 0 && IsGroupSyncOfNewSegment(op, existing)) { stage = 1; throw Injected(op); }
                if (stage == 1) { stage = 2; reopenFailed.TrySetResult(); throw Injected(op); }
            };
            await Assert.ThrowsAsync<LogWriteFailedException>(() =>
                p.AppendAsync(Enumerable.Range(0, 20).Select(i => Record($"failed{i}", Value(i))).ToArray()).AsTask().Within(10));
            await reopenFailed.Task.Within(10);
            fs.BeforeOperation = null;

            await log.RunMaintenanceAsync();

            // Before 9d3dd9a the reopen looked the failed group's first segment up by its index in the
            // segment array, which retention had shifted: every later append failed.
            var after = await p.AppendAsync(Record("after", Value(25))).AsTask().Within(10);
            written.Add((after, "after", Value(25)));
            Assert.Equal(25, after);
            Assert.Equal(start, p.StartOffset); // retention took the two older segments, not the faulted one's
            Assert.Equal(written.Where(w => w.Offset >= start), Contents(p));
        }
        await using (var reopened = EmbeddedLog.Open(dir.Path, LogOptions(clock)))
        {
            var p = reopened.GetOrCreateTopic("t")[0];
            Assert.Equal(start, p.StartOffset);
            Assert.Equal(written.Where(w => w.Offset >= start), Contents(p));
        }
    }

    [Fact]
    public async Task FindOffsetByTimestamp_on_a_closed_log_throws_LogClosedException()
    {
        using var dir = new TempDirectory("review");
        var clock = new TestClock();
        LogPartition p;
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions(clock)))
        {
            p = log.GetOrCreateTopic("t")[0];
            await p.AppendAsync(Record("k", "v", clock.NowMs));
            Assert.Equal(0, p.FindOffsetByTimestamp(clock.NowMs));
        }

        // Every segment is retired. Before 9d3dd9a the lookup called itself again for ever and
        // overflowed the stack, which no test can catch: it killed the test host.
        Assert.Throws<LogClosedException>(() => p.FindOffsetByTimestamp(clock.NowMs));
    }

    [Fact]
    public async Task A_read_returns_nothing_at_or_past_the_end_offset_it_started_from_and_an_empty_read_moves_on_to_that_end()
    {
        using var dir = new TempDirectory("review");
        var clock = new TestClock();
        string partition;
        long end;
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions(clock)))
        {
            var p = log.GetOrCreateTopic("t", Compacted())[0];
            for (var i = 0; i < 5; i++) await p.AppendAsync(Record($"k{i}", Value(i)));
            await p.AppendAsync(Record("gone", null)); // a tombstone, last in the log
            partition = p.Directory;
            end = p.EndOffset;
        }
        // A crash right after a roll leaves an empty active segment; compaction then drops the expired
        // tombstone, so no batch holds end - 1.
        File.Create(Path.Combine(partition, Segment.FileName(end))).Dispose();
        clock.Advance(TombstoneRetention + TimeSpan.FromHours(1));
        var fs = new FaultInjectingFileSystem(PosixFileSystem.Instance);
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions(clock), fs))
        {
            var p = log.GetOrCreateTopic("t")[0];
            Assert.Equal(1, (await log.RunMaintenanceAsync()).RecordsCompacted);

            // The read starts (end offset: end), and is held while it looks through the sealed segment;
            // meanwhile a record is appended to the empty active segment.
            using var pause = new FilePause();
            var sealedSegment = Path.GetFileName(p.Segments[0].LogPath);
            fs.BeforeOperation = op => { if (op.Kind == FileOperationKind.Read && op.FileName == sealedSegment) pause.Hold(); };
            var reading = Task.Factory.StartNew(() => p.Read(end - 1), TaskCreationOptions.LongRunning); // its own thread: it blocks
            await pause.Reached.Within(10);
            Assert.Equal(end, await p.AppendAsync(Record("k", "new")).AsTask().Within(10));
            pause.Release();
            var read = await reading.Within(10);
            fs.BeforeOperation = null;

            // Before 9d3dd9a the read returned the new batch, which its end offset did not cover.
            Assert.True(read.IsEmpty, $"the read returned batches from offset {read.Records().FirstOrDefault().Offset}, at or past its end offset {end}");
            // 9d3dd9a itself answered end - 1, the offset asked: a reader such as ReadAll stood still.
            Assert.Equal(end, read.NextOffset);
            Assert.Equal(end, Assert.Single(p.Read(read.NextOffset).Records()).Offset);
        }
    }

    [Fact]
    public async Task AckOnWrite_never_fsyncs_a_file_again_after_its_fsync_failed_even_when_the_reopen_fails_too()
    {
        using var dir = new TempDirectory("review");
        var fs = new FaultInjectingFileSystem(PosixFileSystem.Instance);
        var options = new TopicOptions { Durability = DurabilityMode.AckOnWrite, FlushBytes = 1, FlushInterval = TimeSpan.FromHours(1) };
        var gate = new Lock();
        long failedHandle = -1;
        var syncsOfFailedHandle = 0;
        var failed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions(new TestClock()), fs))
        {
            var p = log.GetOrCreateTopic("t", options)[0];
            var segment = Path.GetFileName(p.Segments[0].LogPath);
            // The disk has gone bad: every fsync of the segment fails, through any handle.
            fs.BeforeOperation = op =>
            {
                if (op.Kind != FileOperationKind.Sync || op.FileName != segment) return;
                lock (gate)
                {
                    if (failedHandle < 0) failedHandle = op.Handle;
                    if (op.Handle == failedHandle) syncsOfFailedHandle++;
                }
                failed.TrySetResult();
                throw Injected(op);
            };

            Assert.Equal(0, await p.AppendAsync(Record("k", "acknowledged before its fsync")).AsTask().Within(10));
            await failed.Task.Within(10); // the writer's fsync after the acknowledgement failed
        }

        // Closing flushes what is unsynced. Before 9d3dd9a the writer still counted the bytes of the
        // failed fsync as unsynced (the reopen that would have reset that had failed) and fsynced the
        // same file handle again: a retry that may report success for pages the kernel already dropped.
        lock (gate) Assert.Equal(1, syncsOfFailedHandle);
    }

    [Fact]
    public async Task A_reopen_after_a_failed_write_reports_damage_in_acknowledged_bytes_as_corruption_and_never_truncates_them()
    {
        using var dir = new TempDirectory("review");
        var fs = new FaultInjectingFileSystem(PosixFileSystem.Instance);
        await using var log = EmbeddedLog.Open(dir.Path, LogOptions(new TestClock()), fs);
        var p = log.GetOrCreateTopic("t")[0];
        for (var i = 0; i < 3; i++) await p.AppendAsync(Record($"k{i}", Value(i)));
        var segment = p.Segments[0].LogPath;
        var acknowledgedLength = new FileInfo(segment).Length;

        // The last acknowledged batch is damaged on disk; then a write fails and the partition reopens.
        FlipByteOfOpenFile(segment, BatchesIn(segment)[^1].RecordByte);
        fs.FailWrite(1);
        await Assert.ThrowsAsync<LogWriteFailedException>(() => p.AppendAsync(Record("k3", Value(3))).AsTask().Within(10));
        // The writer reopens before it takes the next append, which the corruption then refuses. Before
        // 9d3dd9a the reopen took the damaged batch for a torn tail, truncated it (an acknowledged
        // record gone without a word), and this append got its offset.
        await Assert.ThrowsAsync<LogCorruptionException>(() => p.AppendAsync(Record("k4", Value(4))).AsTask().Within(10));

        Assert.Equal(acknowledgedLength, new FileInfo(segment).Length);
        Assert.Equal(3, p.EndOffset);
        Assert.NotNull(p.Corruption);
        Assert.Throws<LogCorruptionException>(() => p.Read(2));
        Assert.Equal([0L, 1L], p.Read(0).Records().Select(r => r.Offset));
    }

    [Fact]
    public async Task Compaction_copies_the_stored_bytes_of_each_surviving_record_and_keeps_the_producer_fields_of_its_batch()
    {
        using var dir = new TempDirectory("review");
        var clock = new TestClock();
        await using var log = EmbeddedLog.Open(dir.Path, LogOptions(clock));
        var p = log.GetOrCreateTopic("t", Compacted())[0];
        // A header with a null value (length -1) and a header key that is not UTF-8: decoded and
        // encoded again, they would come back as an empty value and U+FFFD.
        var survivor = EncodeRecord(0, Utf8("kept"), Utf8("v"), ([0xFF, 0xFE, 0x80], null), (Utf8("h"), [1, 2, 3]));
        var superseded = EncodeRecord(1, Utf8("replaced"), Utf8("old"));
        var batch = EncodeBatch(clock.NowMs, producerId: 0x1234_5678_9ABC, producerEpoch: 7, baseSequence: 42, survivor, superseded);
        Assert.Equal(0, await p.AppendBatchAsync(batch));
        Assert.Equal(2, await p.AppendAsync(Record("replaced", "new")));
        clock.Advance(TimeSpan.FromHours(2));
        await p.AppendAsync(Record("seal", "s")); // starts a new active segment: the first one is sealed
        Assert.Equal(2, p.SegmentCount);

        Assert.Equal(1, (await log.RunMaintenanceAsync()).RecordsCompacted);

        var compacted = BatchesIn(p.Segments[0].LogPath)[0];
        var bytes = File.ReadAllBytes(compacted.File).AsSpan((int)compacted.Position, compacted.Header.TotalSize).ToArray();
        Assert.Null(RecordBatch.Validate(bytes, 1024));
        Assert.Equal(1, compacted.Header.RecordCount);
        Assert.Equal(survivor, bytes[RecordBatch.HeaderSize..]);
        // Every header field but the length, the CRC and the record count is as appended: base offset,
        // leader epoch, magic, attributes, last offset delta, timestamps, producer id and epoch, base sequence.
        Assert.Equal(batch[..RecordBatch.LengthOffset], bytes[..RecordBatch.LengthOffset]);
        Assert.Equal(batch[RecordBatch.PartitionLeaderEpochOffset..RecordBatch.CrcOffset], bytes[RecordBatch.PartitionLeaderEpochOffset..RecordBatch.CrcOffset]);
        Assert.Equal(batch[RecordBatch.AttributesOffset..RecordBatch.RecordCountOffset], bytes[RecordBatch.AttributesOffset..RecordBatch.RecordCountOffset]);
    }

    [Fact]
    public async Task Compaction_with_fewer_CompactionMaxKeys_than_keys_in_the_first_segment_progresses_each_pass_until_only_the_latest_records_remain()
    {
        using var dir = new TempDirectory("review");
        var clock = new TestClock();
        await using var log = EmbeddedLog.Open(dir.Path, LogOptions(clock));
        var options = Compacted();
        options.CompactionMaxKeys = 3;
        var p = log.GetOrCreateTopic("t", options)[0];
        // The first segment holds 8 keys; "a" comes again after the point where the map fills.
        var written = new List<(long Offset, string Key, string? Value)>();
        foreach (var key in "aabcdaefgh" + "abcdefgh")
            written.Add((await p.AppendAsync(Record(key.ToString(), Value(written.Count))), key.ToString(), Value(written.Count)));
        Assert.True(written.Where(w => w.Offset < p.Segments[1].BaseOffset).Select(w => w.Key).Distinct().Count() > options.CompactionMaxKeys);
        clock.Advance(TimeSpan.FromHours(2));
        written.Add((await p.AppendAsync(Record("seal", "s")), "seal", "s"));
        var latest = written.GroupBy(w => w.Key).Select(g => g.Last()).OrderBy(w => w.Offset).ToList();

        for (var pass = 0; pass < 10; pass++)
        {
            var removed = (await log.RunMaintenanceAsync()).RecordsCompacted;
            // Before 9d3dd9a no pass removed anything: the first segment never fit the map. 9d3dd9a
            // itself mapped the same first keys on every pass, and stopped after the first.
            if (pass == 0) Assert.True(removed > 0, "the first pass removed nothing");
            var survivors = Contents(p);
            Assert.Subset(written.ToHashSet(), survivors.ToHashSet());
            Assert.Subset(survivors.ToHashSet(), latest.ToHashSet()); // never a record newer than where the map ended
        }

        Assert.Equal(latest, Contents(p));
        Assert.Equal(0, p.StartOffset);
    }

    [Fact]
    public async Task A_consumer_offset_commit_with_one_invalid_entry_applies_none_of_them()
    {
        using var dir = new TempDirectory("review");
        IReadOnlyDictionary<(string Topic, int Partition), long> expected = new Dictionary<(string, int), long> { [("orders", 3)] = 7 };
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions(new TestClock())))
        {
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
                log.Offsets.CommitAsync("g", [new(("orders", 0), 5), new(("orders", 1), -1)]));
            Assert.Empty(log.Offsets.GetCommitted("g"));
            // Before 9d3dd9a the entry before the bad one stayed in the group, and this commit made it durable.
            await log.Offsets.CommitAsync("g", "orders", 3, 7);
            Assert.Equal(expected, log.Offsets.GetCommitted("g"));

            await Assert.ThrowsAsync<ArgumentException>(() =>
                log.Offsets.CommitAsync("g", [new(("orders", 2), 6), new((new string('t', ushort.MaxValue + 1), 0), 1)]));
            Assert.Equal(expected, log.Offsets.GetCommitted("g"));
            // Before 9d3dd9a the topic name too long to store stayed in the group: every later commit failed.
            await log.Offsets.CommitAsync("g", "orders", 3, 8);
            expected = new Dictionary<(string, int), long> { [("orders", 3)] = 8 };
            Assert.Equal(expected, log.Offsets.GetCommitted("g"));
        }
        await using (var log = EmbeddedLog.Open(dir.Path, LogOptions(new TestClock())))
            Assert.Equal(expected, log.Offsets.GetCommitted("g"));
    }

    [Fact]
    public async Task GetCommitted_shows_a_consumer_offset_commit_only_once_it_is_durable()
    {
        using var dir = new TempDirectory("review");
        var fs = new FaultInjectingFileSystem(PosixFileSystem.Instance);
        await using var log = EmbeddedLog.Open(dir.Path, LogOptions(new TestClock()), fs);
        await log.Offsets.CommitAsync("g", "orders", 0, 5);

        using var pause = new FilePause();
        fs.BeforeOperation = op => { if (op.Kind == FileOperationKind.Sync && op.FileName.EndsWith(".offsets.tmp", StringComparison.Ordinal)) pause.Hold(); };
        var committing = Task.Factory.StartNew(() => log.Offsets.CommitAsync("g", [new(("orders", 0), 9), new(("orders", 1), 3)]),
            CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap(); // its own thread: it blocks
        await pause.Reached.Within(10);

        Assert.Equal(5, log.Offsets.GetCommitted("g", "orders", 0));
        Assert.Null(log.Offsets.GetCommitted("g", "orders", 1));
        pause.Release();
        await committing.Within(10);
        Assert.Equal(9, log.Offsets.GetCommitted("g", "orders", 0));
        Assert.Equal(3, log.Offsets.GetCommitted("g", "orders", 1));
    }

    /// <summary>Flips a byte of a file the log holds open (sharing it as the log does).</summary>
    private static void FlipByteOfOpenFile(string path, long position)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        var b = new byte[1];
        RandomAccess.Read(handle, b, position);
        b[0] = (byte)~b[0];
        RandomAccess.Write(handle, b, position);
    }

    /// <summary>A record as Kafka stores it, built by hand: length, attributes, timestamp delta (the
    /// offset delta here), offset delta, key, value and headers; a null is stored as length -1.</summary>
    private static byte[] EncodeRecord(int offsetDelta, byte[] key, byte[]? value, params (byte[] Key, byte[]? Value)[] headers)
    {
        var body = new ArrayBufferWriter<byte>();
        body.Write([(byte)0]);
        PutVarint(body, offsetDelta);
        PutVarint(body, offsetDelta);
        PutBytes(body, key);
        PutBytes(body, value);
        PutVarint(body, headers.Length);
        foreach (var (k, v) in headers)
        {
            PutBytes(body, k);
            PutBytes(body, v);
        }
        var record = new ArrayBufferWriter<byte>();
        PutVarint(record, body.WrittenCount);
        record.Write(body.WrittenSpan);
        return record.WrittenSpan.ToArray();
    }

    private static void PutVarint(ArrayBufferWriter<byte> to, long value) => to.Advance(Varint.Write(to.GetSpan(Varint.MaxInt64Bytes), value));

    private static void PutBytes(ArrayBufferWriter<byte> to, byte[]? bytes)
    {
        PutVarint(to, bytes?.Length ?? -1);
        if (bytes is not null) to.Write(bytes);
    }

    /// <summary>A RecordBatch v2 of <paramref name="records"/> (offset and timestamp deltas 0, 1, …) with
    /// the given producer fields, as a Kafka producer sends it.</summary>
    private static byte[] EncodeBatch(long baseTimestamp, long producerId, short producerEpoch, int baseSequence, params byte[][] records)
    {
        var batch = new byte[RecordBatch.HeaderSize + records.Sum(r => r.Length)];
        var span = batch.AsSpan();
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatch.LengthOffset..], batch.Length - RecordBatch.LogOverhead);
        span[RecordBatch.MagicOffset] = RecordBatch.CurrentMagic;
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatch.LastOffsetDeltaOffset..], records.Length - 1);
        BinaryPrimitives.WriteInt64BigEndian(span[RecordBatch.BaseTimestampOffset..], baseTimestamp);
        BinaryPrimitives.WriteInt64BigEndian(span[RecordBatch.MaxTimestampOffset..], baseTimestamp + records.Length - 1);
        BinaryPrimitives.WriteInt64BigEndian(span[RecordBatch.ProducerIdOffset..], producerId);
        BinaryPrimitives.WriteInt16BigEndian(span[RecordBatch.ProducerEpochOffset..], producerEpoch);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatch.BaseSequenceOffset..], baseSequence);
        BinaryPrimitives.WriteInt32BigEndian(span[RecordBatch.RecordCountOffset..], records.Length);
        var at = RecordBatch.HeaderSize;
        foreach (var record in records)
        {
            record.CopyTo(span[at..]);
            at += record.Length;
        }
        BinaryPrimitives.WriteUInt32BigEndian(span[RecordBatch.CrcOffset..], Crc32C.Compute(span[RecordBatch.AttributesOffset..]));
        return batch;
    }
}
