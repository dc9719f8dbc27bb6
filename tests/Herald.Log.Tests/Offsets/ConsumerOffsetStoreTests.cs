using System.Text;
using Herald.Log.Internal;
using Herald.Log.Offsets;

namespace Herald.Log.Tests.Offsets;

public class ConsumerOffsetStoreTests
{
    private static EmbeddedLogOptions Options => new() { MaintenanceInterval = null };

    private static string OffsetsFile(string logDir, string group) =>
        Path.Combine(logDir, "offsets", Convert.ToHexString(Encoding.UTF8.GetBytes(group)) + ".offsets");

    [Fact]
    public async Task Commits_are_kept_per_group_topic_and_partition()
    {
        using var dir = new TempDirectory();
        await using var log = EmbeddedLog.Open(dir.Path, Options);
        var offsets = log.Offsets;

        await offsets.CommitAsync("billing", "orders", 0, 5);
        await offsets.CommitAsync("billing", "orders", 1, 7);
        await offsets.CommitAsync("billing", "payments", 0, 11);
        await offsets.CommitAsync("shipping", "orders", 0, 9);
        await offsets.CommitAsync("billing", "orders", 0, 6); // a later commit replaces the earlier one

        Assert.Equal(6, offsets.GetCommitted("billing", "orders", 0));
        Assert.Equal(7, offsets.GetCommitted("billing", "orders", 1));
        Assert.Equal(11, offsets.GetCommitted("billing", "payments", 0));
        Assert.Equal(9, offsets.GetCommitted("shipping", "orders", 0));
        Assert.Null(offsets.GetCommitted("shipping", "orders", 1));
        Assert.Null(offsets.GetCommitted("nobody", "orders", 0));
        Assert.Equal(
            new Dictionary<(string, int), long> { [("orders", 0)] = 6, [("orders", 1)] = 7, [("payments", 0)] = 11 },
            offsets.GetCommitted("billing"));
        Assert.Empty(offsets.GetCommitted("nobody"));
        Assert.Equal(["billing", "shipping"], offsets.Groups.Order());
    }

    [Fact]
    public async Task Commits_are_durable_across_reopen()
    {
        using var dir = new TempDirectory();
        await using (var log = EmbeddedLog.Open(dir.Path, Options))
        {
            await log.Offsets.CommitAsync("g", [new(("orders", 0), 10), new(("orders", 3), 30)]);
            await log.Offsets.CommitAsync("group with spaces/and ✓", "orders", 1, 20);
            await log.Offsets.CommitAsync("gone", "orders", 1, 20);
            await log.Offsets.DeleteGroupAsync("gone");
        }
        await using (var log = EmbeddedLog.Open(dir.Path, Options))
        {
            Assert.Equal(10, log.Offsets.GetCommitted("g", "orders", 0));
            Assert.Equal(30, log.Offsets.GetCommitted("g", "orders", 3));
            Assert.Equal(20, log.Offsets.GetCommitted("group with spaces/and ✓", "orders", 1));
            Assert.Null(log.Offsets.GetCommitted("gone", "orders", 1));
            Assert.False(File.Exists(OffsetsFile(dir.Path, "gone")));
        }
    }

    [Fact]
    public async Task Concurrent_commits_of_a_group_share_one_write_and_all_become_durable()
    {
        using var dir = new TempDirectory();
        var fs = new GatedFileSystem();
        var store = new ConsumerOffsetStore(fs, dir.Path);
        fs.Gate.Reset();

        // The first commit takes the group's write and is held inside its rename...
        var first = Task.Run(() => store.CommitAsync("g", "t", 0, 100));
        await fs.RenameEntered.Task.Within(10);
        // ...while 49 more commits of the group arrive and queue behind it.
        var rest = Enumerable.Range(1, 49).Select(i => store.CommitAsync("g", "t", i, 100 + i)).ToArray();
        Assert.All(rest, t => Assert.False(t.IsCompleted));
        fs.Gate.Set();
        await Task.WhenAll(rest.Append(first)).Within(10);

        Assert.Equal(2, fs.Renames); // the first commit's write, then one write for all 49 queued behind it
        var reopened = new ConsumerOffsetStore(PosixFileSystem.Instance, dir.Path);
        for (var i = 0; i < 50; i++) Assert.Equal(100 + i, reopened.GetCommitted("g", "t", i));
    }

    [Fact]
    public async Task Commits_from_many_threads_all_become_durable()
    {
        using var dir = new TempDirectory();
        await using (var log = EmbeddedLog.Open(dir.Path, Options))
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, 200), async (i, ct) =>
                await log.Offsets.CommitAsync($"g{i % 3}", "t", i, i * 10L, ct)).Within();
        }
        await using (var log = EmbeddedLog.Open(dir.Path, Options))
        {
            for (var i = 0; i < 200; i++) Assert.Equal(i * 10L, log.Offsets.GetCommitted($"g{i % 3}", "t", i));
        }
    }

    [Theory]
    [InlineData("flipped byte")]
    [InlineData("truncated")]
    [InlineData("empty")]
    [InlineData("bad magic")]
    public async Task A_damaged_offsets_file_is_reported_naming_the_file_not_silently_reset(string damage)
    {
        using var dir = new TempDirectory();
        await using (var log = EmbeddedLog.Open(dir.Path, Options))
        {
            await log.Offsets.CommitAsync("g", "orders", 0, 42);
        }
        var file = OffsetsFile(dir.Path, "g");
        var original = File.ReadAllBytes(file);
        var damaged = (byte[])original.Clone();
        switch (damage)
        {
            case "flipped byte": damaged[original.Length / 2] ^= 0x10; break;
            case "truncated": damaged = original[..^3]; break;
            case "empty": damaged = []; break;
            case "bad magic": damaged[0] = (byte)'X'; break;
        }
        File.WriteAllBytes(file, damaged);

        var e = Assert.Throws<LogCorruptionException>(() => EmbeddedLog.Open(dir.Path, Options));

        Assert.Equal(file, e.File);
        Assert.Contains(file, e.Message, StringComparison.Ordinal);
        // The failed open released the directory lock; with the file restored the offsets are back.
        File.WriteAllBytes(file, original);
        await using var reopened = EmbeddedLog.Open(dir.Path, Options);
        Assert.Equal(42, reopened.Offsets.GetCommitted("g", "orders", 0));
    }

    [Fact]
    public async Task A_leftover_temp_file_from_an_interrupted_commit_is_ignored_and_removed()
    {
        using var dir = new TempDirectory();
        await using (var log = EmbeddedLog.Open(dir.Path, Options))
        {
            await log.Offsets.CommitAsync("g", "orders", 0, 42);
        }
        var temp = OffsetsFile(dir.Path, "g") + ".tmp";
        File.WriteAllBytes(temp, [1, 2, 3]); // a crash between writing the temp file and renaming it

        await using var reopened = EmbeddedLog.Open(dir.Path, Options);

        Assert.Equal(42, reopened.Offsets.GetCommitted("g", "orders", 0));
        Assert.False(File.Exists(temp));
    }

    [Fact]
    public async Task Invalid_commits_are_refused_naming_the_argument()
    {
        using var dir = new TempDirectory();
        await using var log = EmbeddedLog.Open(dir.Path, Options);
        Assert.Equal("offset", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => log.Offsets.CommitAsync("g", "t", 0, -1))).ParamName);
        Assert.Equal("group", (await Assert.ThrowsAsync<ArgumentException>(() => log.Offsets.CommitAsync("", "t", 0, 1))).ParamName);
    }

    /// <summary>The real file system, counting renames (one per durable write of an offsets file)
    /// and able to hold a rename until the test opens the gate.</summary>
    private sealed class GatedFileSystem : LogFileSystem
    {
        private int _renames;

        public ManualResetEventSlim Gate { get; } = new(true);

        public TaskCompletionSource RenameEntered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Renames => Volatile.Read(ref _renames);

        public override LogFile Open(string path, bool create) => PosixFileSystem.Instance.Open(path, create);

        public override void SyncDirectory(string path) => PosixFileSystem.Instance.SyncDirectory(path);

        public override void Move(string from, string to)
        {
            Interlocked.Increment(ref _renames);
            RenameEntered.TrySetResult();
            if (!Gate.Wait(TimeSpan.FromSeconds(10))) throw new TimeoutException("the test never opened the gate");
            base.Move(from, to);
        }
    }
}
