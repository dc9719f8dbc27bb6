using System.Globalization;

namespace Herald.Testing;

/// <summary>The outbox and inbox fault tests, run by the SQLite and the PostgreSQL test projects
/// against their store: a real child process (Herald.Outbox.CrashWorker) writes events through the
/// outbox and handles them with the inbox, and is killed with SIGKILL at a chosen point; a second
/// child resumes. Nothing may be lost, and every effect must happen exactly once although events
/// reach the log, or the handler, twice.</summary>
internal sealed class OutboxCrashScenario(string store, string connectionString, string schema, Func<string, Task<long>> scalar, string workDirectory)
{
    private static readonly TimeSpan ChildTimeout = TimeSpan.FromSeconds(90);

    /// <summary>Herald.Outbox.CrashWorker, copied next to the tests by the project reference.</summary>
    public static string WorkerDll => ChildProcess.Dll("Herald.Outbox.CrashWorker");

    private string LogDirectory => Path.Combine(workDirectory, "log");

    private ChildProcess Start(string mode, int events) =>
        ChildProcess.Start(WorkerDll, [store, connectionString, schema, LogDirectory, mode, events.ToString(CultureInfo.InvariantCulture)],
            line => line.StartsWith("handled ", StringComparison.Ordinal));

    /// <summary>The relay is killed after its first round is durable on the log and before it
    /// removed those events from the outbox; the restarted relay publishes them again, and the
    /// consumer's inbox absorbs the duplicates.</summary>
    public async Task<Outcome> KillTheRelayBetweenPublishAndRemoveAsync(int events)
    {
        int handledBeforeKill;
        using (var first = Start("relay-crash", events))
        {
            await first.WaitForLineAsync(l => l == "ready", ChildTimeout);
            await first.WaitForLineAsync(l => l.StartsWith("published ", StringComparison.Ordinal), ChildTimeout);
            await first.WaitForLineAsync(l => l == "produced", ChildTimeout); // every transaction committed
            // Let the consumer handle some of what the stuck round published, so that those
            // events reach the handler twice after the restart, not only the log.
            await WaitAsync(async () => await scalar("SELECT COUNT(*) FROM effects") > 0, "the first events handled");
            var lines = await first.KillAsync(ChildTimeout);
            handledBeforeKill = lines.Count(l => l.StartsWith("handled ", StringComparison.Ordinal));
        }
        return await ResumeAsync(events, handledBeforeKill);
    }

    /// <summary>The consumer is killed after its handlers' effects (and inbox entries) committed and
    /// before any offset was committed; the restarted consumer gets every event again.</summary>
    public async Task<Outcome> KillTheHandlerBetweenEffectsAndOffsetCommitAsync(int events)
    {
        int handledBeforeKill;
        using (var first = Start("handler-crash", events))
        {
            await first.WaitForLineAsync(l => l == "ready", ChildTimeout);
            await WaitAsync(async () => await scalar("SELECT COUNT(*) FROM effects") >= events, $"all {events} effects committed");
            var lines = await first.KillAsync(ChildTimeout);
            handledBeforeKill = lines.Count(l => l.StartsWith("handled ", StringComparison.Ordinal));
        }
        return await ResumeAsync(events, handledBeforeKill);
    }

    private async Task<Outcome> ResumeAsync(int events, int handledBeforeKill)
    {
        using var second = Start("resume", events);
        var code = await second.WaitForExitAsync(ChildTimeout);
        if (code != 0) throw new InvalidOperationException($"the resumed worker exited with code {code}: {second.Stderr}");
        var handledAfterRestart = second.Lines.Count(l => l.StartsWith("handled ", StringComparison.Ordinal));
        long recordsInLog;
        await using (var log = Herald.Log.EmbeddedLog.Open(LogDirectory, new Herald.Log.EmbeddedLogOptions { MaintenanceInterval = null }))
        {
            var topic = log.GetOrCreateTopic("work");
            recordsInLog = topic.Partitions.Sum(p => p.EndOffset - p.StartOffset);
        }
        return new Outcome(
            Produced: await scalar("SELECT COUNT(*) FROM produced"),
            Effects: await scalar("SELECT COUNT(*) FROM effects"),
            DistinctEffects: await scalar("SELECT COUNT(DISTINCT seq) FROM effects"),
            LeftInOutbox: await scalar("SELECT COUNT(*) FROM " + (schema == "-" ? "" : schema + ".") + "herald_outbox"),
            RecordsInLog: recordsInLog,
            HandledBeforeKill: handledBeforeKill,
            HandledAfterRestart: handledAfterRestart,
            Stderr: second.Stderr);
    }

    private static async Task WaitAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + ChildTimeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting for {what}");
            await Task.Delay(20);
        }
    }

    /// <summary>What the database and the log hold after the restart.</summary>
    internal sealed record Outcome(long Produced, long Effects, long DistinctEffects, long LeftInOutbox, long RecordsInLog, int HandledBeforeKill, int HandledAfterRestart, string Stderr);
}
