using Confluent.Kafka;
using Herald.Transport;
using HeraldPartition = Herald.Transport.TopicPartition;
using KafkaPartition = Confluent.Kafka.TopicPartition;

namespace Herald.Kafka;

/// <summary>Offsets: commits of what the pipeline finished, on the consumer that owns each
/// partition, and the group's committed offsets.</summary>
internal sealed partial class KafkaConsumer
{
    public async ValueTask CommitAsync(IReadOnlyList<KeyValuePair<HeraldPartition, long>> offsets, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(offsets);
        var commits = new List<TopicPartitionOffset>(offsets.Count);
        var owned = _assignment;
        lock (_lost)
        {
            // Not of partitions lost or already handed over: their next owner commits them now
            // (and the retry group, having no members, would not refuse a late commit).
            foreach (var (tp, offset) in offsets)
                if (!_lost.Contains(tp) && owned.Contains(tp)) commits.Add(new TopicPartitionOffset(KafkaTransport.ToKafka(tp), new Offset(offset)));
        }
        if (commits.Count == 0) return;
        // On the rebalance callback's thread (revoking) the commit must be made there and then.
        if (Thread.CurrentThread == _thread) Commit(commits);
        else await Task.Run(() => Commit(commits), cancellationToken).ConfigureAwait(false);
    }

    private IConsumer<byte[]?, byte[]?> ConsumerOf(string topic) =>
        _consumerOf.TryGetValue(topic, out var consumer) ? consumer : throw new ArgumentException($"topic '{topic}' is not one of this consumer's ({string.Join(", ", _consumerOf.Keys)})", nameof(topic));

    private void Commit(List<TopicPartitionOffset> commits)
    {
        foreach (var perConsumer in commits.GroupBy(c => ConsumerOf(c.Topic)))
        {
            try
            {
                perConsumer.Key.Commit(perConsumer);
            }
            catch (KafkaException e) when (e.Error.Code is ErrorCode.Local_NoOffset)
            {
                continue;
            }
            catch (TopicPartitionOffsetException e)
            {
                throw new HeraldException($"Kafka commit of group '{_spec.Group}' failed: " +
                    string.Join(", ", e.Results.Where(r => r.Error.IsError).Select(r => $"{r.Topic}/{r.Partition.Value}: {r.Error.Code} ({r.Error.Reason})")), e);
            }
            foreach (var c in perConsumer) _committed[KafkaTransport.ToHerald(c.TopicPartition)] = c.Offset.Value;
        }
    }

    public long? GetCommitted(HeraldPartition partition)
    {
        if (_committed.TryGetValue(partition, out var offset)) return offset;
        var found = ConsumerOf(partition.Topic).Committed([KafkaTransport.ToKafka(partition)], _transport.Options.RequestTimeout);
        return found.Count == 1 && found[0].Offset.Value >= 0 ? found[0].Offset.Value : null;
    }
}
