using Herald.Testing;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Herald.CrashWorker;
using Herald.Log;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Herald.Tests.Crash;

/// <summary>The pipeline's at-least-once promise, tested with a real SIGKILL: a child process
/// (Herald.CrashWorker) publishes and handles events through AddHerald on the embedded log and is
/// killed mid-stream; a second child consumes what is left and stops cleanly. No event may be
/// lost, an event may be handled twice only if its offset was not yet committed when the first
/// child died, and each key's events run in order.</summary>
public sealed class PipelineCrashTests(ITestOutputHelper output)
{
    /// <summary>Set to run longer, e.g. HERALD_PIPELINE_CRASH_ITERATIONS=100.</summary>
    private const string IterationsVariable = "HERALD_PIPELINE_CRASH_ITERATIONS";

    /// <summary>Set to replay a run: the seed is printed by every run and in every failure.</summary>
    private const string SeedVariable = "HERALD_CRASH_SEED";

    private static readonly TimeSpan ChildTimeout = TimeSpan.FromSeconds(60);
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Herald.CrashWorker, copied next to the tests by the project reference.</summary>
    private static readonly string WorkerDll = ChildProcess.Dll("Herald.CrashWorker");

    /// <summary>Starts the worker; its "handled" progress lines are the ones counted.</summary>
    private static ChildProcess StartWorker(string dataDirectory, string mode, int events, int publishAhead, int seed) =>
        ChildProcess.Start(WorkerDll,
            [dataDirectory, mode, events.ToString(CultureInfo.InvariantCulture), publishAhead.ToString(CultureInfo.InvariantCulture), seed.ToString(CultureInfo.InvariantCulture)],
            line => line == PipelineCrashRun.HandledProgress);

    [Fact]
    public async Task A_SIGKILL_mid_stream_and_a_restart_lose_no_event_and_repeat_only_unfinished_ones()
    {
        var iterations = FromEnvironment(IterationsVariable, 5);
        var seed = FromEnvironment(SeedVariable, Random.Shared.Next());
        output.WriteLine($"{SeedVariable}={seed} {IterationsVariable}={iterations}");
        Assert.True(File.Exists(WorkerDll), $"{WorkerDll} is missing");
        Assert.True(File.Exists(Path.ChangeExtension(WorkerDll, ".runtimeconfig.json")), "the crash worker's runtimeconfig.json is missing");

        var random = new Random(seed);
        var clock = Stopwatch.StartNew();
        var logged = new List<string>();
        var totals = new Totals();
        for (var i = 0; i < iterations; i++)
        {
            // Half the runs keep each key's publisher a few events ahead of its handler, so that the
            // kill lands while both publish and handle; the others publish as fast as they can.
            // The kill comes within the first third or half of the handling: the progress lines the
            // test counts can arrive hundreds late when the machine is busy, and the kill must still
            // come before the end of the stream.
            var events = random.Next(3000, 5001);
            var run = new RunPlan(
                Iteration: i,
                Events: events,
                PublishAhead: i % 2 == 0 ? random.Next(2, 33) : 0,
                KillAfterHandled: random.Next(20, events / (i % 2 == 0 ? 3 : 2)),
                KillDelayMs: random.Next(0, 25),
                WorkerSeed: random.Next());
            var context = $"{SeedVariable}={seed}, iteration {i} ({run})";
            using var dir = new TempDirectory("pipeline-crash");
            string firstStderr, secondStderr;
            try
            {
                (firstStderr, secondStderr) = await RunAndVerifyAsync(dir.Path, run, context, totals);
            }
            catch (Exception e) when (e is not XunitException)
            {
                throw new XunitException($"pipeline crash test failed ({context}): {e.Message}", e);
            }
            if (firstStderr.Length > 0) logged.Add($"iteration {i}, killed run:\n{firstStderr}");
            if (secondStderr.Length > 0) logged.Add($"iteration {i}, restarted run:\n{secondStderr}");
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{iterations} iterations in {clock.Elapsed.TotalSeconds:F1} s: {totals.Events} events in the log, {totals.Published} recorded as published, {totals.KilledWhilePublishing} kills while publishing"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"handled {totals.HandledBeforeKill} before the kills, {totals.HandledAfterRestart} after the restarts, {totals.Duplicates} of them twice (all at or above the committed offset), {totals.CommittedAtKill} committed at the kills"));
        // Checked last, so that the properties above are checked in every iteration first.
        Assert.True(logged.Count == 0, $"{SeedVariable}={seed}: the workers logged warnings or errors:\n{string.Join("\n", logged)}");
    }

    private async Task<(string FirstStderr, string SecondStderr)> RunAndVerifyAsync(string dataDirectory, RunPlan run, string context, Totals totals)
    {
        // 1. Publish and handle; SIGKILL after some events were handled.
        string firstStderr;
        using (var worker = StartWorker(dataDirectory, PipelineCrashRun.PublishAndConsume, run.Events, run.PublishAhead, run.WorkerSeed))
        {
            await worker.WaitForCountAsync(run.KillAfterHandled, ChildTimeout);
            await Task.Delay(run.KillDelayMs);
            await worker.KillAsync(ChildTimeout);
            firstStderr = worker.Stderr;
        }

        // 2. What the kill left: the group's committed offsets and every record of the topic.
        var atKill = ReadLog(PipelineCrashRun.LogDirectory(dataDirectory), context);

        // 3. Restart: consume what is left and stop cleanly.
        string secondStderr;
        using (var worker = StartWorker(dataDirectory, PipelineCrashRun.Consume, run.Events, 0, run.WorkerSeed ^ 0x5bd1e995))
        {
            var code = await worker.WaitForExitAsync(ChildTimeout);
            secondStderr = worker.Stderr;
            Check(code == 0, context, $"the restarted worker exited with code {code}: {secondStderr}");
            var otherLines = worker.Lines.Where(l => l != PipelineCrashRun.HandledProgress).ToList();
            Check(otherLines is ["done"], context, $"the restarted worker printed [{string.Join(" | ", otherLines)}], expected only 'done'");
        }
        var afterRestart = ReadLog(PipelineCrashRun.LogDirectory(dataDirectory), context);

        var published = ReadLines(PipelineCrashRun.PublishedLog(dataDirectory), context, ParsePublished);
        var first = ReadLines(PipelineCrashRun.HandledLog(dataDirectory, PipelineCrashRun.PublishAndConsume), context, ParseHandled);
        var second = ReadLines(PipelineCrashRun.HandledLog(dataDirectory, PipelineCrashRun.Consume), context, ParseHandled);
        Verify(run, context, atKill, afterRestart, published, first, second, totals);
        return (firstStderr, secondStderr);
    }

    private static void Verify(RunPlan run, string context, LogState atKill, LogState afterRestart,
        List<PipelineCrashEvent> published, List<Handled> first, List<Handled> second, Totals totals)
    {
        var partitions = PipelineCrashRun.Partitions;

        // The log: every record is an event of the run, each event once, each key's events in
        // sequence order (one publisher per key, one event at a time).
        var located = new Dictionary<PipelineCrashEvent, (int Partition, long Offset)>();
        var lastSeq = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var p = 0; p < partitions; p++)
        {
            for (var offset = 0; offset < atKill.Records[p].Count; offset++)
            {
                var e = atKill.Records[p][offset];
                Check(located.TryAdd(e, (p, offset)), context, $"{e} is in the log twice: at {Where(located[e])} and at {p}/{offset}");
                var expected = lastSeq.GetValueOrDefault(e.Key, -1) + 1;
                Check(e.Seq == expected, context, $"{p}/{offset} holds {e}, but sequence {expected} of {e.Key} was due");
                lastSeq[e.Key] = e.Seq;
            }
            Check(atKill.Committed[p] <= atKill.Records[p].Count, context, $"partition {p}: committed offset {atKill.Committed[p]} is past the end {atKill.Records[p].Count}");
        }
        Check(located.Count <= run.Events, context, $"the log holds {located.Count} events, more than the {run.Events} published");

        // The restart published nothing, handled everything and committed it all on its clean stop.
        for (var p = 0; p < partitions; p++)
        {
            Check(afterRestart.Records[p].Count == atKill.Records[p].Count, context,
                $"partition {p} ended at {atKill.Records[p].Count} after the kill but at {afterRestart.Records[p].Count} after the restart");
            Check(afterRestart.Committed[p] == afterRestart.Records[p].Count, context,
                $"partition {p}: the restarted worker stopped cleanly with offset {afterRestart.Committed[p]} committed, not the end {afterRestart.Records[p].Count}");
        }

        // Every event whose PublishAsync returned is in the log (durable before the kill).
        foreach (var e in published)
            Check(located.ContainsKey(e), context, $"{e} was published (PublishAsync returned) but is not in the log");

        // Every handled line names the event the log holds at its partition and offset; no event is
        // handled twice within one process.
        var handledFirst = CheckHandled(first, "before the kill", atKill, context);
        var handledSecond = CheckHandled(second, "after the restart", atKill, context);

        // No lost event: every event of the log was handled, before the kill or after the restart.
        foreach (var (e, where) in located)
            Check(handledFirst.Contains(where) || handledSecond.Contains(where), context, $"{e} at {Where(where)} was never handled");

        // Duplicates only of unfinished events: an event handled before the kill and again after the
        // restart must not have been covered by the offset committed when the first process died.
        var duplicates = 0;
        foreach (var where in handledSecond)
        {
            if (!handledFirst.Contains(where)) continue;
            duplicates++;
            Check(where.Offset >= atKill.Committed[where.Partition], context,
                $"{atKill.Records[where.Partition][(int)where.Offset]} at {Where(where)} was handled again after the restart, but offset {atKill.Committed[where.Partition]} was committed before the kill");
        }

        // Key order: before the kill each key's events ran in sequence order from the first, none
        // skipped; after the restart each key's events ran in increasing sequence order.
        CheckKeyOrder(first, context, "before the kill", consecutiveFromZero: true);
        CheckKeyOrder(second, context, "after the restart", consecutiveFromZero: false);

        // The kill must have come mid-stream, or the restart checks nothing.
        Check(handledFirst.Count < run.Events, context,
            $"the kill came after all {run.Events} events were handled: nothing was left for the restart (kill earlier)");

        totals.Events += located.Count;
        totals.Published += published.Count;
        if (published.Count < run.Events) totals.KilledWhilePublishing++;
        totals.HandledBeforeKill += first.Count;
        totals.HandledAfterRestart += second.Count;
        totals.Duplicates += duplicates;
        for (var p = 0; p < partitions; p++) totals.CommittedAtKill += atKill.Committed[p];
    }

    private static HashSet<(int Partition, long Offset)> CheckHandled(List<Handled> lines, string when, LogState log, string context)
    {
        var seen = new HashSet<(int Partition, long Offset)>();
        foreach (var h in lines)
        {
            Check(h.Partition >= 0 && h.Partition < PipelineCrashRun.Partitions && h.Offset >= 0 && h.Offset < log.Records[h.Partition].Count, context,
                $"{h.Event} was handled {when} at {h.Partition}/{h.Offset}, which is not in the log");
            var stored = log.Records[h.Partition][(int)h.Offset];
            Check(stored == h.Event, context, $"{h.Event} was handled {when} at {h.Partition}/{h.Offset}, where the log holds {stored}");
            Check(seen.Add((h.Partition, h.Offset)), context, $"{h.Event} at {h.Partition}/{h.Offset} was handled twice {when}, within one process");
        }
        return seen;
    }

    private static void CheckKeyOrder(List<Handled> lines, string context, string when, bool consecutiveFromZero)
    {
        var last = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var h in lines)
        {
            var key = h.Event.Key;
            var seq = h.Event.Seq;
            if (last.TryGetValue(key, out var previous))
            {
                Check(consecutiveFromZero ? seq == previous + 1 : seq > previous, context,
                    $"{when}, {key} handled sequence {seq} right after {previous}: the key's events ran out of order");
            }
            else
            {
                Check(!consecutiveFromZero || seq == 0, context, $"{when}, {key} handled sequence {seq} first, not 0");
            }
            last[key] = seq;
        }
    }

    /// <summary>Opens the log (recovering it after a kill) and reads the group's committed offsets
    /// and every event of the topic, by partition and offset.</summary>
    private static LogState ReadLog(string logDirectory, string context)
    {
        using var log = EmbeddedLog.Open(logDirectory, new EmbeddedLogOptions { MaintenanceInterval = null });
        Check(log.TryGetTopic(PipelineCrashRun.Topic, out var topic), context, $"topic '{PipelineCrashRun.Topic}' is missing after events were handled");
        Check(topic.Partitions.Count == PipelineCrashRun.Partitions, context, $"topic '{PipelineCrashRun.Topic}' has {topic.Partitions.Count} partitions");
        var committed = new long[PipelineCrashRun.Partitions];
        var records = new List<PipelineCrashEvent>[PipelineCrashRun.Partitions];
        var decoded = new List<LogRecord>();
        foreach (var partition in topic.Partitions)
        {
            var p = partition.Id;
            Check(partition.Recovery.Corruption is null, context, $"recovery of {partition} reported corruption: {partition.Recovery.Corruption?.Message}");
            Check(partition.StartOffset == 0, context, $"{partition} starts at {partition.StartOffset}, but nothing deletes records");
            committed[p] = log.Offsets.GetCommitted(PipelineCrashRun.Group, PipelineCrashRun.Topic, p) ?? 0;
            var events = records[p] = [];
            var end = partition.EndOffset;
            long offset = 0;
            while (offset < end)
            {
                var read = partition.Read(offset);
                Check(!read.IsEmpty, context, $"{partition}: reading offset {offset} below the end {end} returned nothing");
                decoded.Clear();
                read.DecodeRecords(decoded);
                foreach (var record in decoded)
                {
                    Check(record.Offset == offset, context, $"{partition}: offset {record.Offset} where {offset} was due");
                    var e = record.Value is { } value ? JsonSerializer.Deserialize<PipelineCrashEvent>(value.Span, Json) : null;
                    Check(e is not null && record.Key is { } key && Encoding.UTF8.GetString(key.Span) == e.Key, context,
                        $"{partition}: offset {offset} is not an event keyed by its key");
                    events.Add(e!);
                    offset++;
                }
                offset = read.NextOffset;
            }
            Check(events.Count == end, context, $"{partition}: read {events.Count} records up to the end {end}");
        }
        return new LogState(committed, records);
    }

    /// <summary>Reads whole lines; a line without its newline (torn) or unparsable fails.</summary>
    private static List<T> ReadLines<T>(string path, string context, Func<string, T?> parse) where T : class
    {
        var result = new List<T>();
        if (!File.Exists(path)) return result;
        var text = File.ReadAllText(path, Encoding.ASCII);
        var lines = text.Split('\n');
        Check(lines[^1].Length == 0, context, $"{Path.GetFileName(path)} ends with a torn line '{lines[^1]}'");
        for (var i = 0; i < lines.Length - 1; i++)
        {
            var parsed = parse(lines[i]);
            Check(parsed is not null, context, $"{Path.GetFileName(path)} line {i + 1} '{lines[i]}' is malformed");
            result.Add(parsed!);
        }
        return result;
    }

    private static PipelineCrashEvent? ParsePublished(string line) =>
        PipelineCrashRun.TryParsePublished(line, out var e) ? e : null;

    private static Handled? ParseHandled(string line) =>
        PipelineCrashRun.TryParseHandled(line, out var e, out var partition, out var offset) ? new Handled(e, partition, offset) : null;

    private static string Where((int Partition, long Offset) where) => string.Create(CultureInfo.InvariantCulture, $"{where.Partition}/{where.Offset}");

    private static void Check(bool condition, string context, string problem)
    {
        if (!condition) throw new XunitException($"pipeline crash test failed ({context}): {problem}");
    }

    private static int FromEnvironment(string variable, int fallback) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } text
            ? int.Parse(text, NumberStyles.Integer, CultureInfo.InvariantCulture)
            : fallback;

    private sealed record RunPlan(int Iteration, int Events, int PublishAhead, int KillAfterHandled, int KillDelayMs, int WorkerSeed);

    private sealed record Handled(PipelineCrashEvent Event, int Partition, long Offset);

    private sealed record LogState(long[] Committed, List<PipelineCrashEvent>[] Records);

    private sealed class Totals
    {
        public long Events, Published, HandledBeforeKill, HandledAfterRestart, Duplicates, CommittedAtKill;
        public int KilledWhilePublishing;
    }
}
