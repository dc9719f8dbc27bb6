using Confluent.Kafka;

namespace Herald.Kafka;

/// <summary>librdkafka's mock cluster (<c>test.mock.num.brokers</c>): a Kafka-protocol peer
/// inside this process, for tests and trials without a broker. Its bootstrap address comes from
/// its own metadata; it lives while this object does. The mock has no CreateTopics (use
/// <see cref="TopicCreation.BrokerAutoCreate"/>; it creates topics with 4 partitions), keeps about
/// 5 MiB per partition, and does not act on a member's LeaveGroup (the next member to join waits
/// out the session of the one gone, so keep <c>session.timeout.ms</c> short).</summary>
public sealed class KafkaMockCluster : IDisposable
{
    private readonly IProducer<Null, Null> _owner;

    public KafkaMockCluster(int brokers = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(brokers, 1);
        var config = new ProducerConfig();
        config.Set("test.mock.num.brokers", brokers.ToString(System.Globalization.CultureInfo.InvariantCulture));
        _owner = new ProducerBuilder<Null, Null>(config).Build();
        using var admin = new DependentAdminClientBuilder(_owner.Handle).Build();
        var metadata = admin.GetMetadata(TimeSpan.FromSeconds(10));
        BootstrapServers = string.Join(",", metadata.Brokers.Select(b => $"{b.Host}:{b.Port}"));
    }

    /// <summary>host:port[,host:port...] of the mock's brokers.</summary>
    public string BootstrapServers { get; }

    public void Dispose() => _owner.Dispose();
}
