using Herald.Transport;

namespace Herald.Internal.Pipeline;

/// <summary>Partition p of a subscribed topic together with partition p of its retry topic: the
/// unit that owns per-key order. Keys of a lane run one event at a time; records of both topics
/// are tracked for commits. Touched only by the dispatcher.</summary>
internal sealed class Lane
{
    public Lane(string topic, string group, int partition, KeyRouting routing, KeyRouting.Partition routingState)
    {
        Topic = topic;
        Partition = partition;
        MainPartition = new TopicPartition(topic, partition);
        RetryTopic = TopicNames.Retry(topic, group);
        DeadLetterTopic = TopicNames.DeadLetter(topic, group);
        RetryPartition = new TopicPartition(RetryTopic, partition);
        Routing = routing;
        RoutingState = routingState;
    }

    public string Topic { get; }
    public int Partition { get; }
    public TopicPartition MainPartition { get; }
    public TopicPartition RetryPartition { get; }
    public string RetryTopic { get; }
    public string DeadLetterTopic { get; }
    public KeyRouting Routing { get; }

    /// <summary>This lane's routing state; its Blocked count is read without a lock on the hot path.</summary>
    public KeyRouting.Partition RoutingState { get; }

    public readonly OffsetTracker Main = new();
    public readonly OffsetTracker Retry = new();
    public readonly Dictionary<ReadOnlyMemory<byte>, Queue<Work>> Keys = new(ByteKeyComparer.Instance);

    /// <summary>Keys whose head is a retry waiting for its due time (see <see cref="Work.Detached"/>).</summary>
    public readonly HashSet<ReadOnlyMemory<byte>> WaitingHeads = new(ByteKeyComparer.Instance);

    /// <summary>Works started (running or waiting for their due time) and not finished.</summary>
    public int Outstanding;

    public bool Revoking;

    /// <summary>The lane had MaxBlockedKeys blocked keys when a record last finished.</summary>
    public bool OverBlockedLimit;

    public long CommittedMain = -1;
    public long CommittedRetry = -1;
}
