using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using static Herald.Log.Tests.LogTestKit;

namespace Herald.Log.Tests.Partitions;

/// <summary>Reads into pooled arrays, appends that complete without their offset, and
/// <see cref="LogPartition.DataSignal"/>.</summary>
public class PooledReadTests
{
    private static EmbeddedLogOptions Options() => new() { MaintenanceInterval = null };

    private static readonly TopicOptions SmallBatches = new() { MaxBatchBytes = 4096, SegmentBytes = 64 * 1024, Durability = DurabilityMode.AckOnWrite };

    /// <summary>Rents from the shared pool and remembers which arrays are out.</summary>
    private sealed class TrackingPool : ArrayPool<byte>
    {
        private readonly ConcurrentDictionary<byte[], byte> _out = new(ReferenceEqualityComparer.Instance);

        public int Rented;

        public int Outstanding => _out.Count;

        public bool IsOut(byte[] array) => _out.ContainsKey(array);

        public override byte[] Rent(int minimumLength)
        {
            var array = Shared.Rent(minimumLength);
            _out[array] = 0;
            Interlocked.Increment(ref Rented);
            return array;
        }

        public override void Return(byte[] array, bool clearArray = false)
        {
            Assert.True(_out.TryRemove(array, out _), "an array was returned that is not out (returned twice, or never rented here)");
            Shared.Return(array, clearArray);
        }
    }

    [Fact]
    public async Task A_read_with_a_pool_returns_the_same_batches_as_a_read_without_one_in_the_rented_array()
    {
        using var dir = new TempDirectory("pooled");
        await using var log = EmbeddedLog.Open(dir.Path, Options());
        var p = log.GetOrCreateTopic("t", SmallBatches)[0];
        for (var i = 0; i < 20; i++)
            await p.AppendAsync(Enumerable.Range(0, 10).Select(j => Record($"k{i}-{j}", $"{i}-{j}:" + new string('v', 50 + j))).ToArray());
        var pool = new TrackingPool();

        foreach (var (offset, maxBytes) in new[] { (0L, 4096), (0L, 64 * 1024), (37L, 1), (37L, 8192), (199L, 4096) })
        {
            var plain = p.Read(offset, maxBytes);
            var pooled = p.Read(offset, maxBytes, pool);

            Assert.Null(plain.RentedArray);
            var rented = pooled.RentedArray;
            Assert.NotNull(rented);
            Assert.True(pool.IsOut(rented));
            Assert.True(MemoryMarshal.TryGetArray(pooled.Batches, out var segment));
            Assert.Same(rented, segment.Array);
            Assert.Equal(plain.Batches.ToArray(), pooled.Batches.ToArray());
            Assert.Equal(plain.NextOffset, pooled.NextOffset);
            Assert.Equal(plain.Records().Select(r => (r.Offset, Text(r.Key), Text(r.Value))), pooled.Records().Select(r => (r.Offset, Text(r.Key), Text(r.Value))));
            pool.Return(rented);
        }
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public async Task A_read_with_a_pool_that_returns_nothing_or_fails_leaves_no_array_rented()
    {
        using var dir = new TempDirectory("pooled");
        await using var log = EmbeddedLog.Open(dir.Path, Options());
        var p = log.GetOrCreateTopic("t", SmallBatches)[0];
        await p.AppendAsync(Record("a", "1"));
        var pool = new TrackingPool();

        var atEnd = p.Read(1, 4096, pool);
        Assert.True(atEnd.IsEmpty);
        Assert.Null(atEnd.RentedArray);
        Assert.Throws<OffsetOutOfRangeException>(() => p.Read(5, 4096, pool));

        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public async Task AppendIgnoringOffsetAsync_completes_once_the_record_is_readable()
    {
        using var dir = new TempDirectory("pooled");
        await using var log = EmbeddedLog.Open(dir.Path, Options());
        var p = log.GetOrCreateTopic("t", new TopicOptions { MaxBatchBytes = 1024, MaxPendingBytes = 4096 })[0];

        for (var i = 0; i < 50; i++)
        {
            // Several at once, so that some wait for room (MaxPendingBytes) before they are queued.
            var appends = Enumerable.Range(0, 8).Select(j => p.AppendIgnoringOffsetAsync(Record($"k{i}-{j}", $"{i}-{j}:" + new string('x', 400))).AsTask()).ToArray();
            for (var j = 0; j < appends.Length; j++)
            {
                await appends[j].Within(10);
                var offset = i * 8 + j;
                Assert.True(p.EndOffset > offset, $"append {offset} completed before the end offset covered it ({p.EndOffset})");
                var read = p.Read(offset, 1024);
                Assert.Contains(read.Records(), r => r.Offset == offset && Text(r.Key) == $"k{i}-{j}");
            }
        }
    }

    [Fact]
    public async Task DataSignal_is_complete_when_data_is_there_and_completes_on_the_next_write_otherwise()
    {
        using var dir = new TempDirectory("pooled");
        var log = EmbeddedLog.Open(dir.Path, Options());
        try
        {
            var p = log.GetOrCreateTopic("t", SmallBatches)[0];

            var empty = p.DataSignal(0);
            Assert.False(empty.IsCompleted);
            Assert.Same(empty, p.DataSignal(0)); // one shared signal per write, not one per waiter
            await p.AppendAsync(Record("a", "1"));
            await empty.Within(10);
            Assert.True(p.DataSignal(0).IsCompletedSuccessfully);

            var next = p.DataSignal(1);
            Assert.False(next.IsCompleted);
            await Task.Delay(50);
            Assert.False(next.IsCompleted);
            await p.AppendIgnoringOffsetAsync(Record("b", "2"));
            await next.Within(10);
            Assert.True(p.DataSignal(0).IsCompletedSuccessfully);
            Assert.True(p.DataSignal(1).IsCompletedSuccessfully);

            var closing = p.DataSignal(2);
            Assert.False(closing.IsCompleted);
            await log.DisposeAsync();
            await Assert.ThrowsAsync<LogClosedException>(() => closing.Within(10));
        }
        finally
        {
            await log.DisposeAsync();
        }
    }
}
