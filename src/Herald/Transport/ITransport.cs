using Herald.Log;

namespace Herald.Transport;

/// <summary>The seam between Herald and a message backbone: the embedded log by default, Kafka
/// when a service outgrows one machine. A transport produces durable records, reads partitions,
/// and runs consumer groups whose members share partitions.</summary>
public interface ITransport : IAsyncDisposable
{
    /// <summary>A short name for telemetry (<c>messaging.system</c>), such as "herald" or "kafka".</summary>
    string Name { get; }

    /// <summary>Creates the topic when it does not exist; an existing topic keeps its partitions.</summary>
    ValueTask EnsureTopicAsync(TopicSpec topic, CancellationToken cancellationToken = default);

    /// <summary>The number of partitions of an existing topic.</summary>
    /// <exception cref="UnknownTopicException">The topic does not exist.</exception>
    int GetPartitionCount(string topic);

    /// <summary>Appends a record to one partition; completes with its offset once it is durable per
    /// the topic's policy. A full producer buffer makes the caller wait (backpressure). The
    /// transport disposes <see cref="OutgoingRecord.Owner"/> once it no longer needs the record's
    /// memory, at the latest when the returned task completes, whatever the outcome.</summary>
    ValueTask<long> ProduceAsync(string topic, int partition, OutgoingRecord record, CancellationToken cancellationToken = default);

    /// <summary><see cref="ProduceAsync"/> for a caller that does not need the offset; a transport
    /// can then complete it without an extra state machine per record.</summary>
    async ValueTask SendAsync(string topic, int partition, OutgoingRecord record, CancellationToken cancellationToken = default) =>
        await ProduceAsync(topic, partition, record, cancellationToken).ConfigureAwait(false);

    /// <summary>Appends records to one partition in the given order, completing once all are
    /// durable. A transport that can makes it atomic (the embedded log: all or none); otherwise a
    /// failure leaves the records before the failing one produced, and as a rule none after it
    /// (Kafka: a record timing out while later ones of the batch got through can leave a gap).</summary>
    async ValueTask ProduceManyAsync(string topic, int partition, IReadOnlyList<OutgoingRecord> records, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        for (var i = 0; i < records.Count; i++)
        {
            try
            {
                await ProduceAsync(topic, partition, records[i], cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                for (var j = i + 1; j < records.Count; j++) records[j].Owner?.Dispose();
                throw;
            }
        }
    }

    /// <summary>The first and the next-to-be-written offsets of a partition.</summary>
    PartitionOffsets GetOffsets(string topic, int partition);

    /// <summary>Reads the records of one partition from <paramref name="fromOffset"/> up to the end
    /// it had when the read began, outside any consumer group.</summary>
    IAsyncEnumerable<TransportRecord> ReadAsync(string topic, int partition, long fromOffset, CancellationToken cancellationToken = default);

    /// <summary>A new member of a consumer group. Members of a group share the partitions of
    /// their topics; every group gets every record.</summary>
    ITransportConsumer CreateConsumer(ConsumerSpec spec);
}

/// <summary>What a topic is created with.</summary>
public sealed record TopicSpec(string Name, int Partitions, TopicOptions? EmbeddedOptions = null);

/// <summary>A record to produce.</summary>
public readonly record struct OutgoingRecord(
    ReadOnlyMemory<byte>? Key,
    ReadOnlyMemory<byte>? Value,
    IReadOnlyList<LogHeader>? Headers,
    long TimestampMs = -1)
{
    /// <summary>What holds the record's memory (a pooled buffer), if anything: the transport
    /// disposes it exactly once, as soon as it has copied the record or given up on it.</summary>
    public IDisposable? Owner { get; init; }
}

/// <summary>A record consumed or read from a partition. Key, value and header values are valid
/// until the record is finished.</summary>
public readonly record struct TransportRecord(
    string Topic,
    int Partition,
    long Offset,
    long TimestampMs,
    ReadOnlyMemory<byte>? Key,
    ReadOnlyMemory<byte>? Value,
    IReadOnlyList<LogHeader> Headers)
{
    /// <summary>The pooled memory the record lives in, if any: released once by whoever finishes
    /// the record (the subscription pipeline), after which key, value and headers are invalid.</summary>
    internal RecordLease? Lease { get; init; }

    /// <summary>An estimate of the memory the record holds, for prefetch accounting.</summary>
    public int Size
    {
        get
        {
            var size = 64 + (Key?.Length ?? 0) + (Value?.Length ?? 0);
            if (Headers is RecordHeaders stored) return size + stored.StoredLength + 16 * stored.Count; // without decoding them
            for (var i = 0; i < Headers.Count; i++) size += 16 + Headers[i].Key.Length + Headers[i].Value.Length;
            return size;
        }
    }
}

/// <summary>A partition of a topic.</summary>
public readonly record struct TopicPartition(string Topic, int Partition)
{
    public override string ToString() => $"{Topic}/{Partition}";
}

/// <summary>The offset range of a partition: <see cref="Start"/> is the first readable offset,
/// <see cref="End"/> the next one to be written.</summary>
public readonly record struct PartitionOffsets(long Start, long End);

/// <summary>Where a consumer group with no committed offset starts.</summary>
public enum StartFrom
{
    /// <summary>The first record still in the log.</summary>
    Earliest,

    /// <summary>Records published after the group first starts.</summary>
    Latest,
}

/// <summary>How a consumer group member is created.</summary>
public sealed class ConsumerSpec
{
    public required string Group { get; init; }

    public required IReadOnlyList<string> Topics { get; init; }

    public StartFrom StartFrom { get; init; } = StartFrom.Earliest;

    /// <summary>Topics read from the earliest record whatever <see cref="StartFrom"/> says (retry topics).</summary>
    public IReadOnlySet<string>? AlwaysFromEarliest { get; init; }

    /// <summary>Topics whose partition <c>p</c> a member must own exactly while it owns partition
    /// <c>p</c> of their leader (follower → leader: a retry topic follows its event topic, since
    /// the state of a key's retries lives with the member handling the key). Both topics have the
    /// same partition count. The embedded log's per-topic range assignment gives this by itself;
    /// a transport whose assignor does not (Kafka's cooperative-sticky) assigns followers itself.</summary>
    public IReadOnlyDictionary<string, string>? Followers { get; init; }

    /// <summary>Called before partitions are taken away (rebalance or shutdown): the consumer must
    /// finish or abandon their records and commit what finished before it returns.</summary>
    public Func<IReadOnlyList<TopicPartition>, CancellationToken, ValueTask>? OnRevoking { get; init; }

    /// <summary>Called after partitions are given to this member, before their records are fetched; also called once (perhaps with none) when the member first joins.</summary>
    public Func<IReadOnlyList<TopicPartition>, CancellationToken, ValueTask>? OnAssigned { get; init; }
}

/// <summary>One member of a consumer group.</summary>
public interface ITransportConsumer : IAsyncDisposable
{
    /// <summary>The partitions this member owns now.</summary>
    IReadOnlyCollection<TopicPartition> Assignment { get; }

    /// <summary>Waits until records are available and adds up to <paramref name="maxRecords"/> of
    /// them (and about <paramref name="maxBytes"/>) to <paramref name="into"/>, in offset order per
    /// partition. Rebalances run inside this call.</summary>
    ValueTask FetchAsync(List<TransportRecord> into, int maxRecords, long maxBytes, CancellationToken cancellationToken);

    /// <summary>Commits, per partition, the offset of the next record to process.</summary>
    ValueTask CommitAsync(IReadOnlyList<KeyValuePair<TopicPartition, long>> offsets, CancellationToken cancellationToken = default);

    /// <summary>The group's committed offset of a partition, if any.</summary>
    long? GetCommitted(TopicPartition partition);

    /// <summary>Stops fetching from these partitions until <see cref="Resume"/> (they stay assigned).</summary>
    void Pause(IEnumerable<TopicPartition> partitions);

    void Resume(IEnumerable<TopicPartition> partitions);
}

/// <summary>A reference-counted hold on pooled memory that consumed records point into.</summary>
internal abstract class RecordLease
{
    /// <summary>Drops one reference; the memory goes back to its pool with the last.</summary>
    public abstract void Release();
}
