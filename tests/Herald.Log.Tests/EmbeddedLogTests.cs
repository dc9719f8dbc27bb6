using System.Diagnostics;
using static Herald.Log.Tests.LogTestKit;

namespace Herald.Log.Tests;

public class EmbeddedLogTests
{
    private static readonly EmbeddedLogOptions Options = new() { MaintenanceInterval = null };

    [Fact]
    public async Task A_second_Open_of_the_same_directory_throws_LogLockedException_until_the_first_is_disposed()
    {
        using var dir = new TempDirectory();
        var first = EmbeddedLog.Open(dir.Path, Options);
        await first.GetOrCreateTopic("t")[0].AppendAsync(Record("k", "v"));

        var e = Assert.Throws<LogLockedException>(() => EmbeddedLog.Open(dir.Path, Options));
        Assert.Equal(Path.GetFullPath(dir.Path), e.Directory);
        Assert.Equal(1, first.GetOrCreateTopic("t")[0].EndOffset); // the first instance is unharmed

        await first.DisposeAsync();
        await using var second = EmbeddedLog.Open(dir.Path, Options);
        Assert.Equal(1, second.GetOrCreateTopic("t")[0].EndOffset);
    }

    [Fact]
    public async Task Another_process_holding_the_directory_lock_makes_Open_throw_LogLockedException()
    {
        if (!OperatingSystem.IsLinux()) return; // the lock is flock(2): Linux only here
        // flock(1) (util-linux, on every Debian machine) is the cheap other process; under CI its absence is a failure.
        if (!File.Exists("/usr/bin/flock"))
        {
            Assert.False(Environment.GetEnvironmentVariable("CI") == "true", "/usr/bin/flock (util-linux) is missing under CI");
            return;
        }
        using var dir = new TempDirectory();
        var lockFile = Path.Combine(dir.Path, ".lock");

        // The log's lock is visible to another process...
        await using (EmbeddedLog.Open(dir.Path, Options))
        {
            using var probe = Process.Start(new ProcessStartInfo("/usr/bin/flock", ["--nonblock", "--conflict-exit-code", "75", lockFile, "true"]))!;
            await probe.WaitForExitAsync().Within(10);
            Assert.Equal(75, probe.ExitCode);
        }

        // ...and another process's lock keeps the log from opening.
        var holder = new ProcessStartInfo("/usr/bin/flock", ["--nonblock", lockFile, "sh", "-c", "echo locked; read line"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        };
        using (var process = Process.Start(holder)!)
        {
            Assert.Equal("locked", await process.StandardOutput.ReadLineAsync().Within(10));
            Assert.Throws<LogLockedException>(() => EmbeddedLog.Open(dir.Path, Options));
            process.StandardInput.Close(); // the holder exits, releasing the lock
            await process.WaitForExitAsync().Within(10);
        }
        await using var log = EmbeddedLog.Open(dir.Path, Options);
    }

    [Fact]
    public async Task Topics_and_their_options_survive_reopen()
    {
        using var dir = new TempDirectory();
        var options = new TopicOptions { Partitions = 3, SegmentBytes = 8192, MaxBatchBytes = 2048, Cleanup = CleanupPolicy.Compact, RetentionTime = TimeSpan.FromHours(5) };
        await using (var log = EmbeddedLog.Open(dir.Path, Options))
        {
            await log.CreateTopic("orders", options)[2].AppendAsync(Record("k", "v"));
            Assert.Throws<ArgumentException>(() => log.CreateTopic("orders", options));
        }
        await using (var log = EmbeddedLog.Open(dir.Path, Options))
        {
            Assert.True(log.TryGetTopic("orders", out var topic));
            Assert.Equal(3, topic.Partitions.Count);
            Assert.Equal((8192L, 2048, CleanupPolicy.Compact, TimeSpan.FromHours(5)),
                (topic.Options.SegmentBytes, topic.Options.MaxBatchBytes, topic.Options.Cleanup, topic.Options.RetentionTime));
            Assert.Equal(1, topic[2].EndOffset);
            Assert.Throws<ArgumentOutOfRangeException>(() => topic[3]);
        }
    }

    [Fact]
    public async Task A_damaged_topic_manifest_is_reported_naming_the_file()
    {
        using var dir = new TempDirectory();
        await using (var log = EmbeddedLog.Open(dir.Path, Options))
        {
            log.GetOrCreateTopic("orders");
        }
        var manifest = Path.Combine(dir.Path, "topics", "orders", "topic.json");
        File.WriteAllText(manifest, "{ \"version\": 1, \"partitions\": ");

        var e = Assert.Throws<LogCorruptionException>(() => EmbeddedLog.Open(dir.Path, Options));

        Assert.Equal(manifest, e.File);
    }

    [Fact]
    public async Task A_topic_whose_creation_did_not_finish_is_ignored_on_open()
    {
        using var dir = new TempDirectory();
        await using (var log = EmbeddedLog.Open(dir.Path, Options))
        {
            log.GetOrCreateTopic("orders");
        }
        Directory.CreateDirectory(Path.Combine(dir.Path, "topics", "half-made", "0")); // crashed before its manifest

        await using var reopened = EmbeddedLog.Open(dir.Path, Options);

        Assert.Equal(["orders"], reopened.Topics.Select(t => t.Name));
    }
}
