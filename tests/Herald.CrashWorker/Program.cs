// The child process of the pipeline crash test (tests/Herald.Tests/Crash): a host with AddHerald on
// the embedded log in <data-dir>/log. Mode "publish+consume" publishes <events> events over 16 keys
// (one publisher per key, in sequence order) and handles them, appending "key seq" to
// published.txt after each PublishAsync returns and "key seq partition offset" to the handled log
// before each handler returns; with <publish-ahead> above 0 each key's publisher stays at most that
// many events ahead of its handler. The test kills it mid-stream. Mode "consume" publishes nothing,
// handles every offset the group has not committed, stops the host cleanly and exits 0.
// Any failure: the message on stderr and a nonzero exit code.
using System.Globalization;
using Herald;
using Herald.CrashWorker;
using Herald.Embedded;
using Herald.Transport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

if (args.Length != 5
    || args[1] is not (PipelineCrashRun.PublishAndConsume or PipelineCrashRun.Consume)
    || !int.TryParse(args[2], NumberStyles.None, CultureInfo.InvariantCulture, out var events)
    || !int.TryParse(args[3], NumberStyles.None, CultureInfo.InvariantCulture, out var publishAhead)
    || !int.TryParse(args[4], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var seed))
{
    await Console.Error.WriteLineAsync($"usage: Herald.CrashWorker <data-dir> {PipelineCrashRun.PublishAndConsume}|{PipelineCrashRun.Consume} <events> <publish-ahead> <seed>");
    return 2;
}

try
{
    return await RunAsync(args[0], args[1], events, publishAhead, seed);
}
catch (Exception e)
{
    await Console.Error.WriteLineAsync($"crash worker ({args[1]}) failed: {e}");
    return 1;
}

static async Task<int> RunAsync(string dataDirectory, string mode, int events, int publishAhead, int seed)
{
    var publishing = mode == PipelineCrashRun.PublishAndConsume;
    using var progress = new LineLog(Console.OpenStandardOutput());
    using var handled = LineLog.AppendTo(PipelineCrashRun.HandledLog(dataDirectory, mode));
    using var published = publishing ? LineLog.AppendTo(PipelineCrashRun.PublishedLog(dataDirectory)) : null;

    var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
    builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace).SetMinimumLevel(LogLevel.Warning);
    CrashHandler? handler = null;
    builder.Services.AddHerald(h =>
    {
        h.UseEmbedded(PipelineCrashRun.LogDirectory(dataDirectory), o => o.MaintenanceInterval = null);
        // Small segments, so that partitions roll while the worker runs and is killed.
        h.Topic(PipelineCrashRun.Topic, PipelineCrashRun.Partitions, t =>
        {
            t.SegmentBytes = 64 * 1024;
            t.MaxBatchBytes = 16 * 1024;
        });
        h.Event<PipelineCrashEvent>(PipelineCrashRun.Topic, e => e.Key);
        h.Subscribe(PipelineCrashRun.Group, s =>
        {
            s.Options.MaxInFlight = 8;
            s.Options.CommitInterval = TimeSpan.FromMilliseconds(20);
            s.Options.PrefetchRecords = 256; // fills, so that fetching pauses and resumes too
            s.Handle<PipelineCrashEvent>((e, context, ct) => handler!.HandleAsync(e, context, ct));
        });
    });
    using var host = builder.Build();

    // The transport opens the log when first resolved: what is left to handle is known before
    // any subscription starts.
    var log = ((EmbeddedTransport)host.Services.GetRequiredService<ITransport>()).Log;
    HandledCoverage coverage;
    if (publishing) coverage = HandledCoverage.ForEvents(PipelineCrashRun.Partitions, events);
    else
    {
        var from = new long[PipelineCrashRun.Partitions];
        var end = new long[PipelineCrashRun.Partitions];
        if (log.TryGetTopic(PipelineCrashRun.Topic, out var topic))
        {
            for (var p = 0; p < PipelineCrashRun.Partitions; p++)
            {
                end[p] = topic.Partitions[p].EndOffset;
                from[p] = Math.Min(end[p], log.Offsets.GetCommitted(PipelineCrashRun.Group, PipelineCrashRun.Topic, p) ?? topic.Partitions[p].StartOffset);
            }
        }
        coverage = HandledCoverage.ForRanges(from, end);
    }
    var window = publishing && publishAhead > 0 ? new PublishWindow(publishAhead) : null;
    handler = new CrashHandler(handled, progress, coverage, window, seed);

    await host.StartAsync();
    var publishAll = publishing ? PublishAllAsync(host.Services.GetRequiredService<IEventPublisher>(), events, window, published!) : Task.CompletedTask;
    var finished = Task.WhenAll(publishAll, coverage.Complete);
    Task first;
    try
    {
        first = await Task.WhenAny(finished, handler.Fatal).WaitAsync(TimeSpan.FromSeconds(120));
    }
    catch (TimeoutException)
    {
        throw new TimeoutException($"not finished after 120 s: {coverage.Describe()}; publishing {publishAll.Status}");
    }
    await first; // throws what failed: a publish or a handler
    await host.StopAsync();
    progress.Append("done\n");
    return 0;
}

static Task PublishAllAsync(IEventPublisher publisher, int events, PublishWindow? window, LineLog published)
{
    var perKey = new Task[PipelineCrashRun.Keys];
    for (var k = 0; k < perKey.Length; k++)
    {
        var key = PipelineCrashRun.KeyName(k);
        var count = events / PipelineCrashRun.Keys + (k < events % PipelineCrashRun.Keys ? 1 : 0);
        perKey[k] = Task.Run(async () =>
        {
            for (var seq = 0; seq < count; seq++)
            {
                var evt = new PipelineCrashEvent(key, seq);
                if (window is not null) await window.EnterAsync(key);
                await publisher.PublishAsync(evt);
                published.Append(PipelineCrashRun.Published(evt));
            }
        });
    }
    return Task.WhenAll(perKey);
}
