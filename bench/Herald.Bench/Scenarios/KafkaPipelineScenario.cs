using System.Diagnostics;
using Confluent.Kafka;
using Herald.Kafka;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Herald.Bench.Scenarios;

/// <summary>kafka-pipeline: the pipeline scenario's events published through Herald's publisher
/// to Kafka (idempotent producer, acks=all, a publish completes on its delivery report) and handled
/// by a subscription in a consumer group (manual commits of the finished prefix). Against
/// librdkafka's mock cluster in this process unless --bootstrap names a cluster: the mock is a
/// protocol peer, not a broker to measure, so its figures orient and do not compare. Each round
/// uses a topic and a group of its own. publish_per_s is events over the time until the last
/// publish completed; msgs_per_s is events handled over the time from the first publish to the
/// last handled event, best of --rounds after --warmup unmeasured rounds.</summary>
public static class KafkaPipelineScenario
{
    private static readonly string Payload = new('x', 100);

    public static async Task RunAsync(BenchOptions options)
    {
        var count = (int)(options.Count ?? 50_000);
        var window = options.Window ?? 8192;
        var rounds = options.Rounds ?? 3;
        var warmup = options.Warmup ?? 1;
        var keys = options.Keys ?? 1024;
        var partitions = options.Partitions ?? 4;
        using var mock = options.Bootstrap is null ? new MockCluster() : null;
        var bootstrap = options.Bootstrap ?? mock!.BootstrapServers;
        double best = 0, bestPublish = 0;
        GcMeter? bestGc = null;
        for (var round = -warmup; round < rounds; round++)
        {
            var topic = $"bench-{Guid.NewGuid():N}"[..18];
            var handled = 0;
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using var host = Build(bootstrap, mock is not null, topic, keys, partitions, (_, _, _) =>
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
            if (round >= 0 && count / seconds > best)
            {
                best = count / seconds;
                bestPublish = count / published;
                bestGc = gc;
            }
        }
        var output = new BenchOutput("kafka-pipeline")
            .Add("msgs_per_s", best)
            .Add("publish_per_s", bestPublish)
            .Add("count", count)
            .Add("window", window)
            .Add("keys", keys)
            .Add("partitions", partitions)
            .Add("rounds", rounds)
            .Add("warmup", warmup)
            .Add("cluster", mock is null ? bootstrap : "librdkafka-mock")
            .Add("acks", "all");
        bestGc!.AddTo(output, count).Print();
    }

    private static async Task PublishAsync(IEventPublisher publisher, int count, int window)
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

    private static IHost Build(string bootstrap, bool mock, string topic, int keys, int partitions, Func<PipelineEvent, EventContext, CancellationToken, ValueTask> handler)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Services.AddHerald(h =>
        {
            h.UseKafka(bootstrap, k =>
            {
                // The mock has no CreateTopics (it creates topics with 4 partitions on first use).
                if (mock) k.TopicCreation = TopicCreation.BrokerAutoCreate;
            });
            h.UseSystemTextJson(PipelineJsonContext.Default.Options);
            h.Topic(topic, partitions);
            if (keys > 0) h.Event<PipelineEvent>(topic, e => "k" + (e.Seq % keys));
            else h.Event<PipelineEvent>(topic);
            h.Subscribe(topic + "-counter", s =>
            {
                s.Options.MaxInFlight = 256;
                s.Handle(handler);
            });
        });
        return builder.Build();
    }

    /// <summary>librdkafka's mock cluster, held by a producer of this process; its bootstrap
    /// address comes from its own metadata.</summary>
    private sealed class MockCluster : IDisposable
    {
        private readonly IProducer<Null, Null> _owner;

        public MockCluster()
        {
            var config = new ProducerConfig();
            config.Set("test.mock.num.brokers", "1");
            _owner = new ProducerBuilder<Null, Null>(config).Build();
            using var admin = new DependentAdminClientBuilder(_owner.Handle).Build();
            var metadata = admin.GetMetadata(TimeSpan.FromSeconds(10));
            BootstrapServers = string.Join(",", metadata.Brokers.Select(b => $"{b.Host}:{b.Port}"));
        }

        public string BootstrapServers { get; }

        public void Dispose() => _owner.Dispose();
    }
}
