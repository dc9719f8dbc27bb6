using Confluent.Kafka;

namespace Herald.Kafka;

/// <summary>How Herald talks to a Kafka cluster. The settings that carry Herald's guarantees are
/// fixed (idempotent producer, <c>acks=all</c>, <c>murmur2_random</c>, manual commits,
/// cooperative-sticky assignment); everything else is librdkafka's, passed through
/// <see cref="Properties"/> (security: <c>security.protocol</c>, <c>sasl.mechanisms</c>,
/// <c>sasl.username</c>, <c>ssl.ca.location</c>...).</summary>
public sealed class KafkaTransportOptions
{
    /// <summary>The cluster's bootstrap servers, <c>host:port[,host:port...]</c>.</summary>
    public string BootstrapServers { get; set; } = "";

    /// <summary>How long the producer waits to fill a batch (librdkafka <c>linger.ms</c>).</summary>
    public TimeSpan Linger { get; set; } = TimeSpan.FromMilliseconds(5);

    /// <summary>The most bytes in one produce batch per partition (librdkafka <c>batch.size</c>).</summary>
    public int BatchBytes { get; set; } = 1_000_000;

    /// <summary>The producer's queue (librdkafka <c>queue.buffering.max.kbytes</c>, in bytes): a
    /// publish waits while it is full (backpressure), it is not an error.</summary>
    public long ProducerQueueBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>How the topics Herald needs (event topics, retry and dead-letter topics) come to
    /// exist when they do not.</summary>
    public TopicCreation TopicCreation { get; set; } = TopicCreation.Admin;

    /// <summary>The replication factor of topics Herald creates; -1 takes the broker's default
    /// (<c>default.replication.factor</c>). Production clusters want 3 with <c>min.insync.replicas=2</c>.</summary>
    public short ReplicationFactor { get; set; } = -1;

    /// <summary>How long a metadata, admin or commit request may take before it fails.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Any librdkafka property, for every client Herald creates (producer, consumers,
    /// admin). Validated at start: an unknown property, or one that would undo a guarantee above,
    /// is refused with its name.</summary>
    public IDictionary<string, string> Properties { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>Properties Herald sets itself because its guarantees depend on them.</summary>
    internal static readonly IReadOnlySet<string> Reserved = new HashSet<string>(StringComparer.Ordinal)
    {
        "bootstrap.servers", "enable.idempotence", "acks", "request.required.acks", "partitioner",
        "enable.auto.commit", "enable.auto.offset.store", "partition.assignment.strategy", "group.id",
        "auto.offset.reset", "enable.partition.eof", "max.in.flight.requests.per.connection", "max.in.flight",
    };

    /// <summary>Throws naming the first invalid field or property.</summary>
    public void Validate()
    {
        static ArgumentException Invalid(string field, string why) => new($"KafkaTransportOptions.{field} {why}", field);
        if (string.IsNullOrWhiteSpace(BootstrapServers)) throw Invalid(nameof(BootstrapServers), "is required (host:port[,host:port...])");
        if (Linger < TimeSpan.Zero || Linger > TimeSpan.FromSeconds(10)) throw Invalid(nameof(Linger), $"must be in [0, 10 s], was {Linger}");
        if (BatchBytes is < 1024 or > 64 * 1024 * 1024) throw Invalid(nameof(BatchBytes), $"must be in [1 KiB, 64 MiB], was {BatchBytes}");
        if (ProducerQueueBytes is < 1024 * 1024 or > 2L * 1024 * 1024 * 1024) throw Invalid(nameof(ProducerQueueBytes), $"must be in [1 MiB, 2 GiB], was {ProducerQueueBytes}");
        if (ReplicationFactor is 0 or < -1) throw Invalid(nameof(ReplicationFactor), $"must be -1 (the broker's default) or at least 1, was {ReplicationFactor}");
        if (RequestTimeout < TimeSpan.FromMilliseconds(100) || RequestTimeout > TimeSpan.FromMinutes(10)) throw Invalid(nameof(RequestTimeout), $"must be in [100 ms, 10 min], was {RequestTimeout}");
        if (!Enum.IsDefined(TopicCreation)) throw Invalid(nameof(TopicCreation), $"is not one of {string.Join(", ", Enum.GetNames<TopicCreation>())}, was {(int)TopicCreation}");
        foreach (var (name, _) in Properties)
            if (Reserved.Contains(name))
                throw Invalid(nameof(Properties), $"may not set '{name}': Herald sets it (use {nameof(BootstrapServers)} for the servers; the others carry its guarantees)");
    }

    internal ProducerConfig ProducerConfig()
    {
        var config = new ProducerConfig(Common())
        {
            BootstrapServers = BootstrapServers,
            EnableIdempotence = true,
            Acks = Acks.All,
            Partitioner = Confluent.Kafka.Partitioner.Murmur2Random,
            LingerMs = Linger.TotalMilliseconds,
            BatchSize = BatchBytes,
            QueueBufferingMaxKbytes = (int)Math.Max(1, ProducerQueueBytes / 1024),
        };
        return config;
    }

    internal ConsumerConfig ConsumerConfig(string group, AutoOffsetReset reset)
    {
        var config = new ConsumerConfig(Common())
        {
            BootstrapServers = BootstrapServers,
            GroupId = group,
            EnableAutoCommit = false,
            EnableAutoOffsetStore = false,
            PartitionAssignmentStrategy = PartitionAssignmentStrategy.CooperativeSticky,
            AutoOffsetReset = reset,
        };
        return config;
    }

    internal AdminClientConfig AdminConfig() => new(Common()) { BootstrapServers = BootstrapServers };

    private Dictionary<string, string> Common()
    {
        var common = new Dictionary<string, string>(Properties, StringComparer.Ordinal);
        // Herald creates its topics with the partitions it was told; a broker's auto-creation on a
        // metadata request would create them with its own default instead.
        common.TryAdd("allow.auto.create.topics", TopicCreation == TopicCreation.BrokerAutoCreate ? "true" : "false");
        return common;
    }
}

/// <summary>How missing topics are created.</summary>
public enum TopicCreation
{
    /// <summary>Through the admin client (CreateTopics) with the partitions Herald was told and
    /// <see cref="KafkaTransportOptions.ReplicationFactor"/>; needs CREATE permission.</summary>
    Admin,

    /// <summary>By the broker on first use (<c>auto.create.topics.enable</c>), with the broker's
    /// default partitions and replication; Herald partitions by the count the topic then has.
    /// For development clusters, and librdkafka's mock cluster, which has no CreateTopics.</summary>
    BrokerAutoCreate,

    /// <summary>Never: a missing topic is an error that names it.</summary>
    Off,
}
