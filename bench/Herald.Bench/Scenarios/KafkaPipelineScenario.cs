using System.Diagnostics;
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
    public static async Task RunAsync(BenchOptions options)
    {
        var count = (int)(options.Count ?? 50_000);
        var window = options.Window ?? 8192;
        var rounds = options.Rounds ?? 3;
        var warmup = options.Warmup ?? 1;
        var keys = options.Keys ?? 1024;
        var partitions = options.Partitions ?? 4;
        using var mock = options.Bootstrap is null ? new KafkaMockCluster() : null;
        var bootstrap = options.Bootstrap ?? mock!.BootstrapServers;
        PipelineScenario.RoundResult? best = null;
        for (var round = -warmup; round < rounds; round++)
        {
            var topic = $"bench-{Guid.NewGuid():N}"[..18];
            var result = await PipelineScenario.RoundAsync(count, window, handler => Build(bootstrap, mock is not null, topic, keys, partitions, handler));
            if (round >= 0 && result.Rate > (best?.Rate ?? 0)) best = result;
        }
        var output = new BenchOutput("kafka-pipeline")
            .Add("msgs_per_s", best!.Rate)
            .Add("publish_per_s", best.PublishRate)
            .Add("count", count)
            .Add("window", window)
            .Add("keys", keys)
            .Add("partitions", partitions)
            .Add("rounds", rounds)
            .Add("warmup", warmup)
            .Add("cluster", mock is null ? bootstrap : "librdkafka-mock")
            .Add("acks", "all");
        best.Gc.AddTo(output, count).Print();
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
}
