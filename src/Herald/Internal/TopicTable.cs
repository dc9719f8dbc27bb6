using System.Collections.Concurrent;
using Herald.Transport;

namespace Herald.Internal;

/// <summary>The declared topics and their partition counts, creating a topic on first use.</summary>
internal sealed class TopicTable(ITransport transport, IReadOnlyDictionary<string, TopicSpec> declared, int defaultPartitions)
{
    private readonly ConcurrentDictionary<string, int> _partitions = new(StringComparer.Ordinal);

    /// <summary>The partition count of a topic, creating the topic on its first use.</summary>
    public ValueTask<int> PartitionsAsync(string topic, CancellationToken cancellationToken) =>
        _partitions.TryGetValue(topic, out var n) ? ValueTask.FromResult(n) : EnsureAsync(Spec(topic), cancellationToken);

    public TopicSpec Spec(string topic) =>
        declared.TryGetValue(topic, out var spec)
            ? spec with { Partitions = spec.Partitions > 0 ? spec.Partitions : defaultPartitions }
            : new TopicSpec(topic, defaultPartitions);

    public async ValueTask<int> EnsureAsync(TopicSpec spec, CancellationToken cancellationToken)
    {
        await transport.EnsureTopicAsync(spec, cancellationToken).ConfigureAwait(false);
        return _partitions[spec.Name] = transport.GetPartitionCount(spec.Name);
    }
}
