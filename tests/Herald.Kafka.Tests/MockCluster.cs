using Confluent.Kafka;

namespace Herald.Kafka.Tests;

/// <summary>librdkafka's mock cluster: a real Kafka-protocol peer inside a client of this process
/// (<c>test.mock.num.brokers</c>), found through its metadata. One per test class; each test uses
/// topics and groups of its own.</summary>
public sealed class MockCluster : IDisposable
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

    /// <summary>A name no other test uses.</summary>
    public static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)];

    public void Dispose() => _owner.Dispose();
}
