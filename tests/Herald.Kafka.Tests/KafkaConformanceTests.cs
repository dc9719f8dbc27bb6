using Herald.Testing;

namespace Herald.Kafka.Tests;

/// <summary>The transport conformance suite on Kafka, against librdkafka's mock cluster (one per
/// class; each test's topics and groups are its own).</summary>
public sealed class KafkaConformanceTests(MockCluster cluster) : TransportConformance, IClassFixture<MockCluster>
{
    protected override ConformanceBroker OpenBroker() => new KafkaBroker(cluster.BootstrapServers);

    private sealed class KafkaBroker(string bootstrap) : ConformanceBroker
    {
        public override TimeSpan RebalanceWithin => TimeSpan.FromSeconds(6); // the session timeout below

        protected override void UseTransport(HeraldBuilder herald) => herald.UseKafka(bootstrap, KafkaHosts.ForMockCluster);

        public override ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
