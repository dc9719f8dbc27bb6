using Herald.Log.Batches;
using static Herald.Log.Tests.LogTestKit;

namespace Herald.Log.Tests.Partitions;

public class AppendLimitTests
{
    private static readonly TopicOptions Small = new() { MaxBatchBytes = 1024, SegmentBytes = 64 * 1024, MaxPendingBytes = 8192 };

    [Fact]
    public async Task A_record_over_MaxBatchBytes_fails_with_RecordTooLargeException_and_appends_nothing()
    {
        using var dir = new TempDirectory();
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        var p = log.GetOrCreateTopic("t", Small)[0];
        // Header (61) + worst-case record framing (36) + value: 928 value bytes is one byte over 1024.
        var tooLarge = new NewRecord(null, new byte[1024 - RecordBatch.HeaderSize - 36 + 1]);

        var single = await Assert.ThrowsAsync<RecordTooLargeException>(async () => await p.AppendAsync(tooLarge));
        var inList = await Assert.ThrowsAsync<RecordTooLargeException>(async () => await p.AppendAsync([Record("a", "1"), tooLarge]));

        Assert.Equal(1024, single.Limit);
        Assert.Equal(1025, single.Size);
        Assert.Contains("MaxBatchBytes", single.Message, StringComparison.Ordinal);
        Assert.Contains("record 1", inList.Message, StringComparison.Ordinal);
        Assert.Equal(0, p.EndOffset);
    }

    [Fact]
    public async Task A_record_at_the_size_limit_is_accepted_and_read_back()
    {
        using var dir = new TempDirectory();
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        var p = log.GetOrCreateTopic("t", Small)[0];
        var value = Enumerable.Range(0, 1024 - RecordBatch.HeaderSize - 36).Select(i => (byte)i).ToArray();

        Assert.Equal(0, await p.AppendAsync(new NewRecord(null, value)));

        var read = p.Read(0);
        Assert.True(read.Batches.Length <= 1024);
        Assert.Equal(value, Assert.Single(read.Records()).Value!.Value.ToArray());
    }

    [Fact]
    public async Task A_multi_record_append_larger_than_a_batch_is_split_across_batches_with_consecutive_offsets()
    {
        using var dir = new TempDirectory();
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        var p = log.GetOrCreateTopic("t", Small)[0];
        await p.AppendAsync(Record("first", "0"));
        var records = Enumerable.Range(1, 50).Select(i => Record($"k{i}", $"{i}:" + new string('x', 100))).ToArray();

        var baseOffset = await p.AppendAsync(records);

        Assert.Equal(1, baseOffset);
        Assert.Equal(51, p.EndOffset);
        var batches = BatchesIn(p.Segments[0].LogPath);
        Assert.True(batches.Count >= 7, $"50 records of ~110 bytes should need at least 6 batches of 1 KiB, found {batches.Count - 1}");
        Assert.All(batches, b => Assert.True(b.Header.TotalSize <= 1024));
        for (var i = 1; i < batches.Count; i++) Assert.Equal(batches[i - 1].Header.NextOffset, batches[i].Header.BaseOffset);
        var read = ReadAll(p);
        Assert.Equal(Enumerable.Range(0, 51).Select(i => (long)i), read.Select(r => r.Offset));
        Assert.Equal(records.Select(r => Text(r.Value)), read.Skip(1).Select(r => Text(r.Value)));
    }

    [Fact]
    public async Task A_multi_record_append_over_MaxPendingBytes_is_refused_whole()
    {
        using var dir = new TempDirectory();
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        var p = log.GetOrCreateTopic("t", Small)[0];
        var records = Enumerable.Range(0, 100).Select(i => Record($"k{i}", new string('x', 100))).ToArray();

        var e = await Assert.ThrowsAsync<RecordTooLargeException>(async () => await p.AppendAsync(records));

        Assert.Contains("append of 100 records", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, p.EndOffset);
    }

    [Fact]
    public async Task An_empty_multi_record_append_is_refused()
    {
        using var dir = new TempDirectory();
        await using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        var p = log.GetOrCreateTopic("t", Small)[0];
        await Assert.ThrowsAsync<ArgumentException>(async () => await p.AppendAsync(Array.Empty<NewRecord>()));
    }
}
