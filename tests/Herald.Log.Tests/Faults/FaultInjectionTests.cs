using Herald.Log.CrashWorker;
using Herald.Log.Internal;
using Herald.Log.Tests.Crash;
using Xunit.Abstractions;

namespace Herald.Log.Tests.Faults;

/// <summary>DESIGN.md rules 2, 5, 6, 7 and 8 through <see cref="FaultInjectingFileSystem"/>:
/// power cuts that drop what was not synced, failed writes and fsyncs, and a full disk, each
/// while several appenders append concurrently.</summary>
public sealed class FaultInjectionTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static readonly EmbeddedLogOptions Options = new() { MaintenanceInterval = null };

    /// <summary>Segments of about 30 records, so that faults land in segment rolls too.</summary>
    private static TopicOptions SmallSegments() => CrashRecords.CreateTopicOptions(segmentBytes: 32 * 1024, maxBatchBytes: 16 * 1024);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    public async Task Power_cut_at_a_random_moment_keeps_every_acknowledged_record(int seed)
    {
        var random = new Random(seed);
        using var dir = new TempDirectory("powercut");
        var verifier = new CrashLogVerifier();
        long acked = 0, dropped = 0, truncated = 0;
        for (var round = 0; round < 3; round++)
        {
            var fs = new FaultInjectingFileSystem(PosixFileSystem.Instance);
            var log = EmbeddedLog.Open(dir.Path, Options, fs);
            var topic = log.GetOrCreateTopic(CrashRecords.TopicName, SmallSegments());
            fs.CutPowerAt(random.Next(1, 250));
            var outcome = await Appending.RunAsync(topic, round, appenders: 8, calls: 200, stopAtFirstFailure: true).WaitAsync(Timeout);
            if (!fs.IsPoweredOff) fs.CutPower();
            Assert.All(outcome.Failures, e => Assert.IsAssignableFrom<HeraldException>(e));

            // The machine is gone: nothing more reaches the disk, the handles close, the lock goes.
            await log.DisposeAsync();
            dropped += fs.ApplyPowerCut(random);

            foreach (var (partition, offset, id) in outcome.Acknowledged) verifier.Acknowledged(partition, offset, id);
            acked += outcome.Acknowledged.Count;
            await using var reopened = EmbeddedLog.Open(dir.Path, Options);
            foreach (var partition in reopened.Topics.SelectMany(t => t.Partitions)) truncated += partition.Recovery.TruncatedBytes;
            verifier.Verify(reopened);
        }
        Assert.True(acked > 0, "nothing was acknowledged before the power cuts");
        output.WriteLine($"3 power cuts: {acked} acknowledged records, all present of {verifier.Records} in the log; " +
            $"the cuts dropped {dropped} unsynced bytes and recovery truncated {truncated} bytes of torn tail");
    }

    /// <summary>The nth write (of a file named <paramref name="file"/>, when given): a group's
    /// batches, or a segment roll's index files.</summary>
    [Theory]
    [InlineData(1, null)]
    [InlineData(2, null)]
    [InlineData(3, null)]
    [InlineData(7, null)]
    [InlineData(12, null)]
    [InlineData(25, null)]
    [InlineData(41, null)]
    [InlineData(1, ".index")]
    [InlineData(2, ".timeindex")]
    public async Task A_failed_write_fails_its_appends_and_the_partition_reopens_through_recovery(int n, string? file) =>
        await FailedOperationAsync(fs => fs.FailWrite(n, fileSuffix: file));

    /// <summary>The nth fsync: a group's commit, a roll's seal of the old segment or its index
    /// files, or (<paramref name="newFile"/>) the creation of the new segment.</summary>
    [Theory]
    [InlineData(1, null, false)]
    [InlineData(2, null, false)]
    [InlineData(4, null, false)]
    [InlineData(9, null, false)]
    [InlineData(16, null, false)]
    [InlineData(33, null, false)]
    [InlineData(47, null, false)]
    [InlineData(1, ".log", true)]
    [InlineData(2, ".log", true)]
    public async Task A_failed_fsync_fails_its_appends_and_the_partition_reopens_through_recovery(int n, string? file, bool newFile) =>
        await FailedOperationAsync(fs => fs.FailSync(n, fileSuffix: file, newFilesOnly: newFile));

    private static async Task FailedOperationAsync(Action<FaultInjectingFileSystem> inject)
    {
        using var dir = new TempDirectory("ioerror");
        var verifier = new CrashLogVerifier(contiguousSequences: false);
        var fs = new FaultInjectingFileSystem(PosixFileSystem.Instance);
        await using (var log = EmbeddedLog.Open(dir.Path, Options, fs))
        {
            var topic = log.GetOrCreateTopic(CrashRecords.TopicName, SmallSegments());
            inject(fs);
            var appending = Appending.RunAsync(topic, run: 0, appenders: 6, calls: 40, stopAtFirstFailure: false);
            await ReadWhileAsync(topic, appending).WaitAsync(Timeout); // readable throughout
            var faulted = await appending;
            Assert.Equal(1, fs.InjectedFaults);
            Assert.NotEmpty(faulted.Failures);
            Assert.All(faulted.Failures, e => Assert.IsType<LogWriteFailedException>(e));
            faulted.Report(verifier);
            verifier.Verify(log); // still readable, every acknowledged record there, no failed one

            var after = await Appending.RunAsync(topic, run: 1, appenders: 6, calls: 20, stopAtFirstFailure: false).WaitAsync(Timeout);
            Assert.Empty(after.Failures);
            after.Report(verifier);
            verifier.Verify(log);
        }
        await using (var reopened = EmbeddedLog.Open(dir.Path, Options))
            verifier.Verify(reopened);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(23)]
    public async Task Disk_full_fails_appends_with_LogDiskFullException_and_appends_resume_once_space_is_back(int callsBefore)
    {
        using var dir = new TempDirectory("diskfull");
        var verifier = new CrashLogVerifier(contiguousSequences: false);
        var fs = new FaultInjectingFileSystem(PosixFileSystem.Instance);
        await using (var log = EmbeddedLog.Open(dir.Path, Options, fs))
        {
            var topic = log.GetOrCreateTopic(CrashRecords.TopicName, SmallSegments());
            var before = await Appending.RunAsync(topic, run: 0, appenders: 4, calls: callsBefore, stopAtFirstFailure: false).WaitAsync(Timeout);
            Assert.Empty(before.Failures);
            before.Report(verifier);

            fs.DiskFull = true;
            var appending = Appending.RunAsync(topic, run: 1, appenders: 4, calls: 5, stopAtFirstFailure: false);
            await ReadWhileAsync(topic, appending).WaitAsync(Timeout); // readable throughout
            var full = await appending;
            Assert.Empty(full.Acknowledged);
            Assert.Equal(20, full.Failures.Count);
            Assert.All(full.Failures, e => Assert.IsType<LogDiskFullException>(e));
            full.Report(verifier);
            verifier.Verify(log); // readable while the disk is full

            fs.DiskFull = false;
            var after = await Appending.RunAsync(topic, run: 2, appenders: 4, calls: 20, stopAtFirstFailure: false).WaitAsync(Timeout);
            Assert.Empty(after.Failures);
            Assert.NotEmpty(after.Acknowledged);
            after.Report(verifier);
            verifier.Verify(log);
        }
        await using (var reopened = EmbeddedLog.Open(dir.Path, Options))
            verifier.Verify(reopened);
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(6, false)]
    [InlineData(19, false)]
    [InlineData(3, true)]
    public async Task A_single_ENOSPC_write_or_fsync_is_reported_as_LogDiskFullException(int n, bool onSync)
    {
        using var dir = new TempDirectory("enospc");
        var verifier = new CrashLogVerifier(contiguousSequences: false);
        var fs = new FaultInjectingFileSystem(PosixFileSystem.Instance);
        await using (var log = EmbeddedLog.Open(dir.Path, Options, fs))
        {
            var topic = log.GetOrCreateTopic(CrashRecords.TopicName, SmallSegments());
            if (onSync) fs.FailSync(n, diskFull: true);
            else fs.FailWrite(n, diskFull: true);
            var outcome = await Appending.RunAsync(topic, run: 0, appenders: 4, calls: 30, stopAtFirstFailure: false).WaitAsync(Timeout);
            Assert.Equal(1, fs.InjectedFaults);
            Assert.NotEmpty(outcome.Failures);
            Assert.All(outcome.Failures, e => Assert.IsType<LogDiskFullException>(e));
            outcome.Report(verifier);
            verifier.Verify(log);
        }
        await using (var reopened = EmbeddedLog.Open(dir.Path, Options))
            verifier.Verify(reopened);
    }

    /// <summary>Reads every partition from its start to its end, again and again, until
    /// <paramref name="appending"/> completes, checking every record: the log stays readable while
    /// appends fail and partitions reopen. Returns the number of reads.</summary>
    private static Task<long> ReadWhileAsync(LogTopic topic, Task appending) => Task.Run(async () =>
    {
        long reads = 0;
        var records = new List<LogRecord>();
        do
        {
            foreach (var partition in topic.Partitions)
            {
                var end = partition.EndOffset;
                for (var offset = partition.StartOffset; offset < end;)
                {
                    var read = partition.Read(offset, 64 * 1024);
                    Assert.False(read.IsEmpty, $"{partition}: read at {offset} below the end {end} returned nothing");
                    records.Clear();
                    read.DecodeRecords(records);
                    foreach (var record in records)
                    {
                        var problem = CrashRecords.Check(record, partition.Id, out _);
                        Assert.True(problem is null, problem);
                    }
                    offset = read.NextOffset;
                    reads++;
                }
            }
            await Task.Yield();
        }
        while (!appending.IsCompleted);
        return reads;
    });

    /// <summary>Concurrent appenders of <see cref="CrashRecords"/>, each making its calls in turn.</summary>
    private sealed class Appending
    {
        private readonly Lock _lock = new();

        public List<(int Partition, long Offset, CrashRecordId Id)> Acknowledged { get; } = [];

        public List<Exception> Failures { get; } = [];

        public List<CrashRecordId> FailedIds { get; } = [];

        public static async Task<Appending> RunAsync(LogTopic topic, int run, int appenders, int calls, bool stopAtFirstFailure)
        {
            var outcome = new Appending();
            var tasks = new Task[appenders];
            for (var a = 0; a < appenders; a++)
            {
                var appender = new CrashAppender(topic, run, a);
                tasks[a] = Task.Run(() => outcome.AppendAsync(appender, calls, stopAtFirstFailure));
            }
            await Task.WhenAll(tasks);
            return outcome;
        }

        private async Task AppendAsync(CrashAppender appender, int calls, bool stopAtFirstFailure)
        {
            for (var c = 0; c < calls; c++)
            {
                var seq = appender.NextSeq;
                var count = appender.NextCount;
                try
                {
                    var (first, _, _) = await appender.AppendNextAsync();
                    lock (_lock)
                        for (var i = 0; i < count; i++) Acknowledged.Add((appender.Partition.Id, first + i, appender.Id(seq + i)));
                }
                catch (HeraldException e)
                {
                    lock (_lock)
                    {
                        Failures.Add(e);
                        for (var i = 0; i < count; i++) FailedIds.Add(appender.Id(seq + i));
                    }
                    if (stopAtFirstFailure) return;
                }
            }
        }

        /// <summary>Tells the verifier what was acknowledged and what must be absent.</summary>
        public void Report(CrashLogVerifier verifier)
        {
            foreach (var (partition, offset, id) in Acknowledged) verifier.Acknowledged(partition, offset, id);
            foreach (var id in FailedIds) verifier.Forbidden.Add(id);
        }
    }
}
