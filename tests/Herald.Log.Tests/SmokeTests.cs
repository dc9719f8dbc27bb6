using System.Text;

namespace Herald.Log.Tests;

public class SmokeTests
{
    [Fact]
    public async Task Appended_records_read_back_after_reopen()
    {
        using var dir = new TempDirectory();
        var payloads = Enumerable.Range(0, 1000).Select(i => $"event-{i}").ToArray();
        await using (var log = EmbeddedLog.Open(dir.Path))
        {
            var p = log.GetOrCreateTopic("orders", new TopicOptions { Partitions = 2, SegmentBytes = 16 * 1024, MaxBatchBytes = 4096 })[1];
            var tasks = payloads.Select(s => p.AppendAsync(new NewRecord(Encoding.UTF8.GetBytes("k"), Encoding.UTF8.GetBytes(s))).AsTask()).ToArray();
            var offsets = await Task.WhenAll(tasks);
            Assert.Equal(Enumerable.Range(0, 1000).Select(i => (long)i), offsets.Order());
            Assert.Equal(1000, p.EndOffset);
        }
        await using (var log = EmbeddedLog.Open(dir.Path))
        {
            Assert.True(log.TryGetTopic("orders", out var topic));
            var p = topic[1];
            Assert.Equal(1000, p.EndOffset);
            Assert.True(p.SegmentCount > 1);
            var all = new List<LogRecord>();
            long offset = 0;
            while (offset < p.EndOffset)
            {
                var read = p.Read(offset, 4096);
                read.DecodeRecords(all);
                offset = read.NextOffset;
            }
            Assert.Equal(1000, all.Count);
            for (var i = 0; i < all.Count; i++) Assert.Equal(i, all[i].Offset);
            Assert.Equal(payloads.Order(), all.Select(r => Encoding.UTF8.GetString(r.Value!.Value.Span)).Order());
        }
    }
}
