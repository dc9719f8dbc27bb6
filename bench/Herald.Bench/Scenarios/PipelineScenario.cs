using System.Diagnostics;
using Herald.Log;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Herald.Bench.Scenarios;

/// <summary>The event of the pipeline benchmark: the same shape the peers send (a Guid, an int
/// and a 100-character string).</summary>
public sealed record PipelineEvent(Guid Id, int Seq, string Payload);

/// <summary>System.Text.Json source generation for the benchmark's event, as Herald recommends for
/// production (h.UseSystemTextJson with a JsonSerializerContext): no reflection per event.</summary>
[System.Text.Json.Serialization.JsonSerializable(typeof(PipelineEvent))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web)]
public sealed partial class PipelineJsonContext : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary>pipeline: events published through Herald's publisher to the embedded durable
/// transport (fsync with group commit before a publish completes) and handled by a subscription
/// whose handler counts them. Two modes:
/// - throughput (no --rate): one publisher keeps --window publishes outstanding (a durable
///   publish completes after fsync, so a producer that waits for each one in turn measures the
///   disk's latency, not the pipeline); msgs_per_s is events handled over the time from the first
///   publish to the last handled event, best of --rounds after --warmup unmeasured rounds (default 1: the JIT
///   goes on tiering methods up in the background for seconds after start).
/// - latency (--rate R): an open-loop generator publishes at R per second; latency is from the
///   publish call to the handler's invocation, end to end (p50/p99/p999).
/// The event is serialized with a source-generated System.Text.Json context, the configuration
/// Herald recommends; the peers send the same record in memory without serializing it.</summary>
public static class PipelineScenario
{
    private static readonly string Payload = new('x', 100);

    public static async Task RunAsync(BenchOptions options)
    {
        if (options.Rate is { } rate) await RunLatencyAsync(options, rate);
        else await RunThroughputAsync(options);
    }

    private static async Task RunThroughputAsync(BenchOptions options)
    {
        var count = (int)(options.Count ?? 1_000_000);
        var window = options.Window ?? 8192;
        var rounds = options.Rounds ?? 3;
        var warmup = options.Warmup ?? 1;
        var keys = options.Keys ?? 1024;
        var partitions = options.Partitions ?? 1;
        RoundResult? best = null;
        string fs = "";
        for (var round = -warmup; round < rounds; round++)
        {
            using var dir = new BenchDirectory(options.Dir, "pipeline");
            fs = dir.FileSystem;
            var result = await RoundAsync(count, window, handler => Build(dir.Path, keys, partitions, handler));
            if (round >= 0 && result.Rate > (best?.Rate ?? 0)) best = result;
        }
        var output = new BenchOutput("pipeline")
            .Add("msgs_per_s", best!.Rate)
            .Add("count", count)
            .Add("window", window)
            .Add("keys", keys)
            .Add("partitions", partitions)
            .Add("rounds", rounds)
            .Add("warmup", warmup)
            .Add("durability", "fsync")
            .Add("fs", fs);
        best.Gc.AddTo(output, count).Print();
    }

    /// <summary>One measured round: the host built around a counting handler, the events published
    /// (msgs_per_s: events over the time from the first publish to the last handled one;
    /// PublishRate: over the time until the last publish completed).</summary>
    internal sealed record RoundResult(double Rate, double PublishRate, GcMeter Gc);

    internal static async Task<RoundResult> RoundAsync(int count, int window, Func<Func<PipelineEvent, EventContext, CancellationToken, ValueTask>, IHost> build)
    {
        var handled = 0;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = build((_, _, _) =>
        {
            if (Interlocked.Increment(ref handled) == count) done.TrySetResult();
            return ValueTask.CompletedTask;
        });
        await host.StartAsync();
        var publisher = host.Services.GetRequiredService<IEventPublisher>();
        var gc = new GcMeter();
        var started = Stopwatch.GetTimestamp();
        await PublishAsync(publisher, count, window);
        var published = Stopwatch.GetElapsedTime(started).TotalSeconds;
        await done.Task.WaitAsync(TimeSpan.FromMinutes(10));
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        gc.Stop();
        await host.StopAsync();
        return new RoundResult(count / seconds, count / published, gc);
    }

    /// <summary>Publishes count events keeping window publishes outstanding.</summary>
    internal static async Task PublishAsync(IEventPublisher publisher, int count, int window)
    {
        var pending = new ValueTask[window];
        for (var i = 0; i < count; i++)
        {
            var slot = i % window;
            if (i >= window) await pending[slot];
#pragma warning disable CA2012 // awaited exactly once, when its slot comes round again or at the end
            pending[slot] = publisher.PublishAsync(new PipelineEvent(Guid.NewGuid(), i, Payload));
#pragma warning restore CA2012
        }
        for (var i = Math.Max(0, count - window); i < count; i++) await pending[i % window];
    }

    private static async Task RunLatencyAsync(BenchOptions options, int rate)
    {
        var measured = (int)(options.Count ?? 300_000);
        var keys = options.Keys ?? 1024;
        var partitions = options.Partitions ?? 1;
        var warmup = Math.Max(1, rate / 2);
        var total = checked(measured + warmup);
        var recorder = new LatencyRecorder(total, warmup);
        var handled = 0;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var dir = new BenchDirectory(options.Dir, "pipeline-latency");
        using var host = Build(dir.Path, keys, partitions, (e, _, _) =>
        {
            recorder.Acks[e.Seq] = Stopwatch.GetTimestamp();
            if (Interlocked.Increment(ref handled) == total) done.TrySetResult();
            return ValueTask.CompletedTask;
        });
        await host.StartAsync();
        var publisher = host.Services.GetRequiredService<IEventPublisher>();
        var pacer = new Pacer(rate, options.Pace);
        var gc = new GcMeter();
#pragma warning disable CA2012 // each publish is awaited exactly once, by the collector
        await OpenLoop.RunAsync(total, pacer, recorder, i => publisher.PublishAsync(new PipelineEvent(Guid.NewGuid(), i, Payload)), static (_, publish) => publish);
#pragma warning restore CA2012
        await done.Task.WaitAsync(TimeSpan.FromMinutes(10));
        gc.Stop();
        await host.StopAsync();
        var output = recorder.AddTo(new BenchOutput("pipeline-latency"))
            .Add("rate", rate)
            .Add("pace", options.Pace)
            .Add("count", measured)
            .Add("keys", keys)
            .Add("partitions", partitions)
            .Add("durability", "fsync")
            .Add("fs", dir.FileSystem);
        gc.AddTo(output, total).Print();
    }

    private static IHost Build(string directory, int keys, int partitions, Func<PipelineEvent, EventContext, CancellationToken, ValueTask> handler)
    {
        // No configuration files and so no file watcher: run from a folder holding the bench data, the
        // host's reload-on-change watcher saw every segment write.
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Services.AddHerald(h =>
        {
            h.UseEmbedded(directory, o => o.MaintenanceInterval = null);
            h.UseSystemTextJson(PipelineJsonContext.Default.Options);
            h.Topic("bench", partitions);
            if (keys > 0) h.Event<PipelineEvent>("bench", e => KeyOf(e.Seq, keys));
            else h.Event<PipelineEvent>("bench");
            h.Subscribe("counter", s =>
            {
                s.Options.MaxInFlight = 256;
                s.Handle(handler);
            });
        });
        return builder.Build();
    }

    private static readonly string[] KeyNames = Enumerable.Range(0, 65536).Select(i => "k" + i).ToArray();

    private static string KeyOf(int seq, int keys) => KeyNames[seq % Math.Min(keys, KeyNames.Length)];
}
