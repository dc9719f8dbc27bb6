using System.Runtime.CompilerServices;
using Herald.Log;
using Herald.Transport;

namespace Herald.Embedded;

/// <summary>The default transport: Herald.Log in this process. Records are durable when
/// <see cref="ProduceAsync"/> completes (fsync with group commit unless a topic opts out);
/// consumer groups are coordinated in process through the log (<see cref="EmbeddedLog.Groups"/>, so
/// transports over one log share them) and their offsets kept in the log's offset store.</summary>
public sealed class EmbeddedTransport : ITransport
{
    private readonly EmbeddedLog _log;
    private readonly bool _ownsLog;

    /// <summary>Opens (or creates) the log in <paramref name="directory"/>; the transport owns it.</summary>
    public EmbeddedTransport(string directory, EmbeddedLogOptions? options = null)
        : this(EmbeddedLog.Open(directory, options), ownsLog: true)
    {
    }

    /// <summary>Uses an open log; disposing the transport leaves it open when <paramref name="ownsLog"/> is false.</summary>
    public EmbeddedTransport(EmbeddedLog log, bool ownsLog)
    {
        ArgumentNullException.ThrowIfNull(log);
        _log = log;
        _ownsLog = ownsLog;
    }

    public string Name => "herald";

    /// <summary>Buffers that consumers read into: up to 64 per size (4 MiB of 64 KiB reads), so
    /// the pool stays bounded while a prefetch's worth of reads is in use.</summary>
    internal System.Buffers.ArrayPool<byte> ReadPool { get; } = System.Buffers.ArrayPool<byte>.Create(1024 * 1024, 64);

    /// <summary>The log underneath.</summary>
    public EmbeddedLog Log => _log;

    public ValueTask EnsureTopicAsync(TopicSpec topic, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(topic);
        if (_log.TryGetTopic(topic.Name, out _)) return ValueTask.CompletedTask;
        var options = topic.EmbeddedOptions?.Clone() ?? _log.DefaultTopicOptions();
        options.Partitions = topic.Partitions;
        _log.GetOrCreateTopic(topic.Name, options);
        return ValueTask.CompletedTask;
    }

    public int GetPartitionCount(string topic) => Topic(topic).Partitions.Count;

    public ValueTask<long> ProduceAsync(string topic, int partition, OutgoingRecord record, CancellationToken cancellationToken = default) =>
        PartitionFor(topic, partition, record).AppendAsync(ToNewRecord(record), cancellationToken);

    public ValueTask SendAsync(string topic, int partition, OutgoingRecord record, CancellationToken cancellationToken = default) =>
        PartitionFor(topic, partition, record).AppendIgnoringOffsetAsync(ToNewRecord(record), cancellationToken);

    /// <summary>One atomic append: the log writes all the records in one group, or none.</summary>
    public async ValueTask ProduceManyAsync(string topic, int partition, IReadOnlyList<OutgoingRecord> records, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        if (records.Count == 0) return;
        LogPartition log;
        try
        {
            log = Partition(topic, partition);
        }
        catch
        {
            foreach (var r in records) r.Owner?.Dispose();
            throw;
        }
        var list = new NewRecord[records.Count];
        for (var i = 0; i < list.Length; i++) list[i] = ToNewRecord(records[i]);
        await log.AppendAsync(list, cancellationToken).ConfigureAwait(false);
    }

    private static NewRecord ToNewRecord(in OutgoingRecord record) =>
        new(record.Key, record.Value, record.Headers, record.TimestampMs) { Owner = record.Owner };

    /// <summary>The partition to append to; when there is none, the record's owner is let go first.</summary>
    private LogPartition PartitionFor(string topic, int partition, in OutgoingRecord record)
    {
        try
        {
            return Partition(topic, partition);
        }
        catch
        {
            record.Owner?.Dispose();
            throw;
        }
    }

    public PartitionOffsets GetOffsets(string topic, int partition)
    {
        var p = Partition(topic, partition);
        return new PartitionOffsets(p.StartOffset, p.EndOffset);
    }

    public async IAsyncEnumerable<TransportRecord> ReadAsync(string topic, int partition, long fromOffset, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var p = Partition(topic, partition);
        var end = p.EndOffset;
        var offset = Math.Max(fromOffset, p.StartOffset);
        var records = new List<LogRecord>();
        while (offset < end)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var read = p.Read(offset);
            if (read.IsEmpty) break;
            records.Clear();
            read.DecodeRecords(records);
            foreach (var r in records)
            {
                if (r.Offset >= end) yield break;
                yield return new TransportRecord(topic, partition, r.Offset, r.TimestampMs, r.Key, r.Value, r.Headers);
            }
            offset = read.NextOffset;
            await Task.Yield();
        }
    }

    public ITransportConsumer CreateConsumer(ConsumerSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        EmbeddedLog.ValidateTopicName(spec.Group); // a group name becomes part of retry and dead-letter topic names
        foreach (var t in spec.Topics) _ = Topic(t);
        return new EmbeddedConsumer(this, spec);
    }

    // The last topic looked up, by reference: a publisher sends to the same topic string over and
    // over (topics are never deleted from a log, so an entry cannot go stale).
    private sealed record LastTopic(string Name, LogTopic Topic);
    private LastTopic? _lastTopic;

    internal LogTopic Topic(string topic)
    {
        if (_lastTopic is { } last && ReferenceEquals(last.Name, topic)) return last.Topic;
        if (!_log.TryGetTopic(topic, out var t)) throw new UnknownTopicException(topic);
        _lastTopic = new LastTopic(topic, t);
        return t;
    }

    internal LogPartition Partition(string topic, int partition)
    {
        var t = Topic(topic);
        if ((uint)partition >= (uint)t.Partitions.Count)
            throw new ArgumentOutOfRangeException(nameof(partition), partition, $"topic '{topic}' has {t.Partitions.Count} partitions");
        return t.Partitions[partition];
    }

    public async ValueTask DisposeAsync()
    {
        if (_ownsLog) await _log.DisposeAsync().ConfigureAwait(false);
    }
}
