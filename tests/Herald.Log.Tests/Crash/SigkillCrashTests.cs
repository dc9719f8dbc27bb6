using Herald.Testing;
using System.Diagnostics;
using System.Globalization;
using Herald.Log.CrashWorker;
using Xunit.Abstractions;

namespace Herald.Log.Tests.Crash;

/// <summary>DESIGN.md durability rules 2 and 5, tested with a real SIGKILL: a child process
/// appends with acknowledgements and is killed at random moments, again and again, in one log
/// directory. After every kill the log must hold every acknowledged record byte for byte, and
/// nothing in it may be anything but a whole record of the generator.</summary>
public sealed class SigkillCrashTests(ITestOutputHelper output)
{
    /// <summary>Set to run longer, e.g. HERALD_CRASH_ITERATIONS=500.</summary>
    private const string IterationsVariable = "HERALD_CRASH_ITERATIONS";

    /// <summary>Set to replay a run: the seed is printed by every run.</summary>
    private const string SeedVariable = "HERALD_CRASH_SEED";

    private static readonly TimeSpan StartupTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Acknowledged_records_survive_repeated_SIGKILL()
    {
        var iterations = FromEnvironment(IterationsVariable, 50);
        var seed = FromEnvironment(SeedVariable, Random.Shared.Next());
        output.WriteLine($"{SeedVariable}={seed} {IterationsVariable}={iterations}");
        var workerDll = ChildProcess.Dll("Herald.Log.CrashWorker"); // copied next to the tests by the project reference
        Assert.True(File.Exists(workerDll), $"{workerDll} is missing");
        Assert.True(File.Exists(Path.ChangeExtension(workerDll, ".runtimeconfig.json")), "the crash worker's runtimeconfig.json is missing");

        var random = new Random(seed);
        using var dir = new TempDirectory("sigkill");
        var verifier = new CrashLogVerifier();
        var options = new EmbeddedLogOptions { MaintenanceInterval = null };
        long acked = 0, truncatedBytes = 0, tornTails = 0;
        var earlyKills = 0;
        var clock = Stopwatch.StartNew();
        var verifying = TimeSpan.Zero;
        for (var run = 0; run < iterations; run++)
        {
            IReadOnlyList<string> lines;
            using (var worker = ChildProcess.Start(workerDll, [dir.Path, run.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                if (run % 8 == 7)
                {
                    // Any moment at all: while the runtime starts, while the log recovers, or appending.
                    earlyKills++;
                    await Task.Delay(random.Next(0, 400));
                }
                else
                {
                    await worker.WaitForCountAsync(random.Next(1, 50), StartupTimeout);
                    await Task.Delay(random.Next(0, 301));
                }
                lines = await worker.KillAsync(TimeSpan.FromSeconds(30));
            }
            foreach (var line in lines)
            {
                Assert.True(AckWriter.TryParse(line, out var partition, out var offset, out var id), $"run {run}: unexpected output line '{line}'");
                Assert.Equal(CrashRecords.PartitionOf(id), partition);
                Assert.Equal(run, id.Run);
                verifier.Acknowledged(partition, offset, id);
                acked++;
            }

            var verifyStarted = clock.Elapsed;
            await using (var log = EmbeddedLog.Open(dir.Path, options))
            {
                foreach (var topic in log.Topics)
                {
                    foreach (var partition in topic.Partitions)
                    {
                        truncatedBytes += partition.Recovery.TruncatedBytes;
                        if (partition.Recovery.TruncatedBytes > 0) tornTails++;
                    }
                }
                // Up to 100 runs every run re-reads the whole log; a longer run re-reads the last
                // 2 MiB of each partition every run and all of it every tenth, to stay linear.
                verifier.Verify(log, fullPass: iterations <= 100 || run % 10 == 9 || run == iterations - 1);
            }
            verifying += clock.Elapsed - verifyStarted;
        }

        Assert.True(acked > 0, "no run acknowledged anything");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{iterations} runs killed with SIGKILL ({earlyKills} at any moment, the rest after their first acknowledgements) in {clock.Elapsed.TotalSeconds:F1} s, {verifying.TotalSeconds:F1} s of it reopening and verifying"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{acked} acknowledged records, all present; {verifier.Records} records in the log ({verifier.Bytes} bytes of batches), all whole"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"recovery truncated {truncatedBytes} bytes of torn tail in {tornTails} partition openings"));
    }

    private static int FromEnvironment(string variable, int fallback) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } text
            ? int.Parse(text, NumberStyles.Integer, CultureInfo.InvariantCulture)
            : fallback;
}
