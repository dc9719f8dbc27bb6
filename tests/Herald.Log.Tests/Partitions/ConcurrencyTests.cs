using System.Collections.Concurrent;
using System.Text;
using static Herald.Log.Tests.LogTestKit;

namespace Herald.Log.Tests.Partitions;

public class ConcurrencyTests
{
    private static readonly TopicOptions SmallSegments = new() { MaxBatchBytes = 1024, SegmentBytes = 4096, IndexIntervalBytes = 256 };

    [Fact]
    public async Task Concurrent_appenders_and_followers_see_every_record_once_in_offset_order()
    {
        const int Appenders = 4, PerAppender = 300, Total = Appenders * PerAppender;
        using var dir = new TempDirectory();
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        var p = log.GetOrCreateTopic("t", SmallSegments)[0];
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        // Followers start first, so they wait for data and then follow the appends as they land.
        var followers = Enumerable.Range(0, 3).Select(_ => Task.Run(() => FollowAsync(p, Total, stop.Token))).ToList();
        followers.Add(Task.Run(() => PollAsync(p, Total, stop.Token)));
        var acknowledged = new ConcurrentDictionary<long, string>();
        var appenders = Enumerable.Range(0, Appenders).Select(a => Task.Run(async () =>
        {
            for (var i = 0; i < PerAppender;)
            {
                if (i % 7 == 3 && i + 3 <= PerAppender)
                {
                    // Some appends carry several records, which must get consecutive offsets.
                    var many = Enumerable.Range(i, 3).Select(n => Record($"a{a}", $"{a}:{n}")).ToArray();
                    var first = await p.AppendAsync(many);
                    for (var k = 0; k < 3; k++) Assert.True(acknowledged.TryAdd(first + k, $"{a}:{i + k}"));
                    i += 3;
                }
                else
                {
                    Assert.True(acknowledged.TryAdd(await p.AppendAsync(Record($"a{a}", $"{a}:{i}")), $"{a}:{i}"));
                    i++;
                }
            }
        })).ToArray();

        await Task.WhenAll(appenders).Within();
        var seen = await Task.WhenAll(followers).Within();

        Assert.Equal(Total, p.EndOffset);
        Assert.Equal(Enumerable.Range(0, Total).Select(i => (long)i), acknowledged.Keys.Order());
        Assert.True(p.SegmentCount > 3, "the records should span several segments, so that followers cross rolls");
        foreach (var records in seen)
        {
            Assert.Equal(Enumerable.Range(0, Total).Select(i => (long)i), records.Select(r => r.Offset));
            Assert.All(records, r => Assert.Equal(acknowledged[r.Offset], r.Value));
            // Each appender awaited its appends one by one, so its records are in its own order.
            foreach (var group in records.GroupBy(r => r.Value.Split(':')[0]))
                Assert.Equal(Enumerable.Range(0, PerAppender), group.Select(r => int.Parse(r.Value.Split(':')[1])));
        }
    }

    private static async Task<List<(long Offset, string Value)>> FollowAsync(LogPartition p, int count, CancellationToken cancellationToken)
    {
        var seen = new List<(long, string)>(count);
        await foreach (var record in p.ReadRecordsAsync(0, cancellationToken))
        {
            seen.Add((record.Offset, Encoding.UTF8.GetString(record.Value!.Value.Span)));
            if (seen.Count == count) break;
        }
        return seen;
    }

    private static async Task<List<(long Offset, string Value)>> PollAsync(LogPartition p, int count, CancellationToken cancellationToken)
    {
        var seen = new List<(long, string)>(count);
        var records = new List<LogRecord>();
        long offset = 0;
        while (seen.Count < count)
        {
            await p.WaitForDataAsync(offset, cancellationToken);
            var read = p.Read(offset, 512);
            records.Clear();
            read.DecodeRecords(records);
            foreach (var r in records) seen.Add((r.Offset, Encoding.UTF8.GetString(r.Value!.Value.Span)));
            offset = read.NextOffset;
        }
        return seen;
    }

    [Fact]
    public async Task ReadRecordsAsync_ends_with_OperationCanceledException_when_cancelled_while_waiting()
    {
        using var dir = new TempDirectory();
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        var p = log.GetOrCreateTopic("t")[0];
        await p.AppendAsync([Record("k", "0"), Record("k", "1"), Record("k", "2")]);
        using var cts = new CancellationTokenSource();
        await using var records = p.ReadRecordsAsync(1, cts.Token).GetAsyncEnumerator();

        Assert.True(await records.MoveNextAsync());
        Assert.Equal(1, records.Current.Offset);
        Assert.True(await records.MoveNextAsync());
        Assert.Equal(2, records.Current.Offset);
        var waiting = records.MoveNextAsync().AsTask();
        Assert.False(waiting.IsCompleted);
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.Within(10));
    }

    [Fact]
    public async Task WaitForDataAsync_completes_when_a_record_lands_and_not_before()
    {
        using var dir = new TempDirectory();
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        var p = log.GetOrCreateTopic("t")[0];
        await p.AppendAsync(Record("k", "0"));

        Assert.True(p.WaitForDataAsync(0).AsTask().IsCompletedSuccessfully);
        var waiting = p.WaitForDataAsync(1).AsTask();
        Assert.False(waiting.IsCompleted);
        await p.AppendAsync(Record("k", "1"));
        await waiting.Within(10);

        using var cts = new CancellationTokenSource();
        var cancelled = p.WaitForDataAsync(2, cts.Token).AsTask();
        Assert.False(cancelled.IsCompleted);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.Within(10));
    }

    [Fact]
    public async Task A_follower_waiting_for_data_fails_with_LogClosedException_when_the_log_closes()
    {
        using var dir = new TempDirectory();
        var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        var p = log.GetOrCreateTopic("t")[0];
        var waiting = p.WaitForDataAsync(0).AsTask();

        await log.DisposeAsync();

        await Assert.ThrowsAsync<LogClosedException>(() => waiting.Within(10));
        await Assert.ThrowsAsync<LogClosedException>(async () => await p.AppendAsync(Record("k", "v")));
    }
}
