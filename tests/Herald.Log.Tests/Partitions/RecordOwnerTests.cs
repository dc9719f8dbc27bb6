using System.Collections.Concurrent;
using System.Text;
using Herald.Log.Batches;
using Herald.Log.Internal;
using Herald.Log.Tests.Faults;
using static Herald.Log.Tests.LogTestKit;

namespace Herald.Log.Tests.Partitions;

/// <summary><see cref="NewRecord.Owner"/>: disposed exactly once when the log no longer needs the
/// record's memory, whatever becomes of the append.</summary>
public class RecordOwnerTests
{
    private static readonly TopicOptions Small = new() { MaxBatchBytes = 1024, SegmentBytes = 64 * 1024, MaxPendingBytes = 8192 };

    /// <summary>Counts its disposals.</summary>
    private sealed class CountingOwner : IDisposable
    {
        private int _disposals;

        public int Disposals => Volatile.Read(ref _disposals);

        public void Dispose() => Interlocked.Increment(ref _disposals);
    }

    private static (NewRecord Record, CountingOwner Owner) Owned(string? key, string value)
    {
        var owner = new CountingOwner();
        return (new NewRecord(Bytes(key), Utf8(value)) { Owner = owner }, owner);
    }

    /// <summary>A record whose value fills most of a <see cref="Small"/> batch, and its pending size.</summary>
    private static (NewRecord Record, CountingOwner Owner, int Size) Large(int i)
    {
        var owner = new CountingOwner();
        var record = new NewRecord(null, Utf8($"{i}:" + new string('x', 880))) { Owner = owner };
        return (record, owner, RecordBatch.HeaderSize + RecordBatchBuilder.MaxEncodedSize(record));
    }

    [Fact]
    public async Task The_owner_of_an_appended_record_is_disposed_once_by_the_time_the_append_completes()
    {
        using var dir = new TempDirectory("owner");
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        var p = log.GetOrCreateTopic("t", Small)[0];
        var (single, singleOwner) = Owned("a", "1");
        var (ignoring, ignoringOwner) = Owned("b", "2");
        var many = Enumerable.Range(0, 5).Select(i => Owned($"m{i}", $"{i}")).ToArray();

        Assert.Equal(0, await p.AppendAsync(single));
        await p.AppendIgnoringOffsetAsync(ignoring);
        Assert.Equal(2, await p.AppendAsync(many.Select(m => m.Record).ToArray()));

        Assert.Equal(1, singleOwner.Disposals);
        Assert.Equal(1, ignoringOwner.Disposals);
        Assert.All(many, m => Assert.Equal(1, m.Owner.Disposals));
        Assert.Equal(["1", "2", "0", "1", "2", "3", "4"], ReadAll(p).Select(r => Text(r.Value)));
    }

    [Fact]
    public async Task The_owner_goes_back_as_soon_as_the_writer_copied_the_record_before_the_write_is_durable()
    {
        using var dir = new TempDirectory("owner");
        var fs = new FaultInjectingFileSystem(PosixFileSystem.Instance);
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null }, fs);
        var p = log.GetOrCreateTopic("t", Small)[0];
        using var pause = new FilePause();
        fs.BeforeOperation = op => { if (op.Kind == FileOperationKind.Write && op.FileName.EndsWith(".log", StringComparison.Ordinal)) pause.Hold(); };
        var (record, owner) = Owned("a", "held");

        var appending = p.AppendAsync(record).AsTask();
        await pause.Reached.Within(10);

        Assert.False(appending.IsCompleted);
        Assert.Equal(1, owner.Disposals);
        pause.Release();
        Assert.Equal(0, await appending.Within(10));
        Assert.Equal(1, owner.Disposals);
    }

    [Fact]
    public async Task The_owner_of_a_refused_record_is_disposed_once()
    {
        using var dir = new TempDirectory("owner");
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        var p = log.GetOrCreateTopic("t", Small)[0];
        var compacted = log.GetOrCreateTopic("c", new TopicOptions { Cleanup = CleanupPolicy.Compact })[0];
        var tooLarge = new string('x', 1024);
        var (single, singleOwner) = Owned("a", tooLarge);
        var (ignoring, ignoringOwner) = Owned("b", tooLarge);
        var (fits, fitsOwner) = Owned("c", "small");
        var (inList, inListOwner) = Owned("d", tooLarge);
        var (noKey, noKeyOwner) = Owned(null, "no key");
        var (noKeyIgnoring, noKeyIgnoringOwner) = Owned(null, "no key");
        var overPending = Enumerable.Range(0, 100).Select(i => Owned($"k{i}", new string('x', 100))).ToArray();

        await Assert.ThrowsAsync<RecordTooLargeException>(async () => await p.AppendAsync(single));
        await Assert.ThrowsAsync<RecordTooLargeException>(async () => await p.AppendIgnoringOffsetAsync(ignoring));
        await Assert.ThrowsAsync<RecordTooLargeException>(async () => await p.AppendAsync([fits, inList]));
        await Assert.ThrowsAsync<RecordTooLargeException>(async () => await p.AppendAsync(overPending.Select(o => o.Record).ToArray()));
        await Assert.ThrowsAsync<ArgumentException>(async () => await compacted.AppendAsync(noKey));
        await Assert.ThrowsAsync<ArgumentException>(async () => await compacted.AppendIgnoringOffsetAsync(noKeyIgnoring));

        Assert.Equal(1, singleOwner.Disposals);
        Assert.Equal(1, ignoringOwner.Disposals);
        Assert.Equal(1, fitsOwner.Disposals);
        Assert.Equal(1, inListOwner.Disposals);
        Assert.All(overPending, o => Assert.Equal(1, o.Owner.Disposals));
        Assert.Equal(1, noKeyOwner.Disposals);
        Assert.Equal(1, noKeyIgnoringOwner.Disposals);
        Assert.Equal(0, p.EndOffset);
        Assert.Equal(0, compacted.EndOffset);
    }

    [Fact]
    public async Task The_owner_of_a_record_appended_to_a_closed_partition_is_disposed_once()
    {
        using var dir = new TempDirectory("owner");
        var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        var p = log.GetOrCreateTopic("t", Small)[0];
        await p.AppendAsync(Record("before", "close"));
        await log.DisposeAsync();
        var (single, singleOwner) = Owned("a", "1");
        var (ignoring, ignoringOwner) = Owned("b", "2");
        var many = Enumerable.Range(0, 3).Select(i => Owned($"m{i}", $"{i}")).ToArray();

        await Assert.ThrowsAsync<LogClosedException>(async () => await p.AppendAsync(single));
        await Assert.ThrowsAsync<LogClosedException>(async () => await p.AppendIgnoringOffsetAsync(ignoring));
        await Assert.ThrowsAsync<LogClosedException>(async () => await p.AppendAsync(many.Select(m => m.Record).ToArray()));

        Assert.Equal(1, singleOwner.Disposals);
        Assert.Equal(1, ignoringOwner.Disposals);
        Assert.All(many, m => Assert.Equal(1, m.Owner.Disposals));
    }

    [Fact]
    public async Task The_owner_of_a_record_whose_write_fails_is_disposed_once()
    {
        using var dir = new TempDirectory("owner");
        var fs = new FaultInjectingFileSystem(PosixFileSystem.Instance);
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null }, fs);
        var p = log.GetOrCreateTopic("t", Small)[0];
        await p.AppendAsync(Record("first", "ok"));
        var (failing, failingOwner) = Owned("a", "write fails");
        var (synced, syncedOwner) = Owned("b", "fsync fails");
        var (after, afterOwner) = Owned("c", "after");

        fs.FailWrite(1, fileSuffix: ".log");
        await Assert.ThrowsAsync<LogWriteFailedException>(async () => await p.AppendAsync(failing));
        fs.FailSync(1, fileSuffix: ".log");
        await Assert.ThrowsAsync<LogWriteFailedException>(async () => await p.AppendIgnoringOffsetAsync(synced));
        Assert.Equal(1, await p.AppendAsync(after));

        Assert.Equal(1, failingOwner.Disposals);
        Assert.Equal(1, syncedOwner.Disposals);
        Assert.Equal(1, afterOwner.Disposals);
        Assert.Equal(["ok", "after"], ReadAll(p).Select(r => Text(r.Value)));
    }

    [Fact]
    public async Task The_owner_of_an_append_cancelled_or_closed_while_it_waits_for_room_is_disposed_once_and_the_queued_ones_are_written()
    {
        using var dir = new TempDirectory("owner");
        var fs = new FaultInjectingFileSystem(PosixFileSystem.Instance);
        var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null }, fs);
        Task? closing = null;
        using var pause = new FilePause();
        try
        {
            var p = log.GetOrCreateTopic("t", Small)[0];
            fs.BeforeOperation = op => { if (op.Kind == FileOperationKind.Write && op.FileName.EndsWith(".log", StringComparison.Ordinal)) pause.Hold(); };
            // The writer takes the first append and stands in its write: what comes next stays pending.
            var (first, firstOwner, _) = Large(0);
            var firstAppend = p.AppendAsync(first).AsTask();
            await pause.Reached.Within(10);
            var queued = new List<(Task<long> Task, CountingOwner Owner)>();
            long pending = 0;
            for (var i = 1; ; i++)
            {
                var (record, owner, size) = Large(i);
                if (pending + size > Small.MaxPendingBytes) break;
                pending += size;
                queued.Add((p.AppendAsync(record).AsTask(), owner));
            }
            Assert.True(queued.Count >= 2, $"expected several queued appends, got {queued.Count}");

            // These find no room: they wait, then are cancelled.
            using var cts = new CancellationTokenSource();
            var (single, singleOwner, _) = Large(100);
            var (ignoring, ignoringOwner, _) = Large(101);
            var many = new[] { Large(102), Large(103) };
            var waitingSingle = p.AppendAsync(single, cts.Token).AsTask();
            var waitingIgnoring = p.AppendIgnoringOffsetAsync(ignoring, cts.Token).AsTask();
            var waitingMany = p.AppendAsync(many.Select(m => m.Record).ToArray(), cts.Token).AsTask();
            var (closed, closedOwner, _) = Large(104);
            var waitingClosed = p.AppendAsync(closed).AsTask(); // not cancellable: it fails when the log closes
            await Task.Delay(50);
            Assert.False(waitingSingle.IsCompleted || waitingIgnoring.IsCompleted || waitingMany.IsCompleted || waitingClosed.IsCompleted,
                "appends past MaxPendingBytes should wait for room");
            Assert.Equal(0, singleOwner.Disposals + ignoringOwner.Disposals + many.Sum(m => m.Owner.Disposals) + closedOwner.Disposals);

            await cts.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waitingSingle.Within(10));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waitingIgnoring.Within(10));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waitingMany.Within(10));
            Assert.Equal(1, singleOwner.Disposals);
            Assert.Equal(1, ignoringOwner.Disposals);
            Assert.All(many, m => Assert.Equal(1, m.Owner.Disposals));
            Assert.All(queued, q => Assert.Equal(0, q.Owner.Disposals)); // still pending: their memory is still needed

            closing = log.DisposeAsync().AsTask(); // waits for the held writer; the waiting append fails now
            await Assert.ThrowsAsync<LogClosedException>(() => waitingClosed.Within(10));
            Assert.Equal(1, closedOwner.Disposals);

            pause.Release();
            Assert.Equal(0, await firstAppend.Within(10));
            for (var i = 0; i < queued.Count; i++) Assert.Equal(i + 1, await queued[i].Task.Within(10));
            await closing.Within(10);
            Assert.Equal(1, firstOwner.Disposals);
            Assert.All(queued, q => Assert.Equal(1, q.Owner.Disposals));
            // Nothing was disposed a second time once the writer ran.
            Assert.Equal(1, singleOwner.Disposals);
            Assert.Equal(1, ignoringOwner.Disposals);
            Assert.All(many, m => Assert.Equal(1, m.Owner.Disposals));
            Assert.Equal(1, closedOwner.Disposals);
        }
        finally
        {
            pause.Release();
            await (closing ?? log.DisposeAsync().AsTask());
        }
    }

    [Fact]
    public async Task Pooled_record_buffers_reused_as_soon_as_their_owner_is_disposed_never_change_what_was_appended()
    {
        using var dir = new TempDirectory("owner");
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions
        {
            DefaultTopic = new TopicOptions { Durability = DurabilityMode.AckOnWrite, MaxBatchBytes = 4096, MaxPendingBytes = 64 * 1024 },
            MaintenanceInterval = null,
        });
        var p = log.GetOrCreateTopic("t")[0];
        var pool = new ScribblingPool();
        const int appenders = 4, perAppender = 2500;

        var tasks = Enumerable.Range(0, appenders).Select(a => Task.Run(async () =>
        {
            var inFlight = new List<Task>();
            for (var i = 0; i < perAppender; i++)
            {
                var id = a * perAppender + i;
                var buffer = pool.Rent();
                var length = Encoding.UTF8.GetBytes($"value-{id}-{new string((char)('a' + id % 26), id % 200)}", buffer);
                var keyLength = Encoding.UTF8.GetBytes($"key-{id}", buffer.AsSpan(length));
                var record = new NewRecord(buffer.AsMemory(length, keyLength), buffer.AsMemory(0, length),
                    [new LogHeader("id", buffer.AsMemory(length, keyLength))]) { Owner = new PooledBuffer(pool, buffer) };
                inFlight.Add(i % 3 == 0 ? p.AppendIgnoringOffsetAsync(record).AsTask() : p.AppendAsync(record).AsTask());
                if (inFlight.Count == 64)
                {
                    await Task.WhenAll(inFlight);
                    inFlight.Clear();
                }
            }
            await Task.WhenAll(inFlight);
        })).ToArray();
        await Task.WhenAll(tasks).Within(60);

        Assert.Equal(0, pool.DoubleReturns);
        var records = ReadAll(p);
        Assert.Equal(appenders * perAppender, records.Count);
        var ids = new HashSet<int>();
        foreach (var r in records)
        {
            var key = Text(r.Key)!;
            Assert.StartsWith("key-", key, StringComparison.Ordinal);
            var id = int.Parse(key.AsSpan(4), System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(ids.Add(id), $"id {id} appended twice");
            Assert.Equal($"value-{id}-{new string((char)('a' + id % 26), id % 200)}", Text(r.Value));
            Assert.Equal(key, Text(Assert.Single(r.Headers).Value));
        }
    }

    /// <summary>Hands out 1 KiB arrays and overwrites each one as it comes back, so that a record read
    /// after its owner was disposed shows up as damaged data; counts arrays returned twice.</summary>
    private sealed class ScribblingPool
    {
        private readonly ConcurrentBag<byte[]> _free = [];
        private readonly ConcurrentDictionary<byte[], byte> _out = new(ReferenceEqualityComparer.Instance);
        private int _doubleReturns;

        public int DoubleReturns => Volatile.Read(ref _doubleReturns);

        public byte[] Rent()
        {
            if (!_free.TryTake(out var buffer)) buffer = new byte[1024];
            _out[buffer] = 0;
            return buffer;
        }

        public void Return(byte[] buffer)
        {
            if (!_out.TryRemove(buffer, out _))
            {
                Interlocked.Increment(ref _doubleReturns);
                return;
            }
            buffer.AsSpan().Fill((byte)'#');
            _free.Add(buffer);
        }
    }

    private sealed class PooledBuffer(ScribblingPool pool, byte[] buffer) : IDisposable
    {
        public void Dispose() => pool.Return(buffer);
    }
}
