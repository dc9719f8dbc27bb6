using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Herald.Log;
using Herald.Transport;
using HeraldPartition = Herald.Transport.TopicPartition;
using KafkaPartition = Confluent.Kafka.TopicPartition;

namespace Herald.Kafka;

/// <summary>Herald on Apache Kafka, through Confluent.Kafka. A produce completes once Kafka has
/// the record (idempotent producer, <c>acks=all</c>: every in-sync replica); a full producer queue
/// makes the caller wait. Partitions are chosen by Herald with Kafka's murmur2, so a key lands where
/// a Java producer, librdkafka's <c>murmur2_random</c> and the embedded log put it. Consumer groups
/// are Kafka's, with cooperative-sticky assignment and manual commits of what Herald finished.</summary>
public sealed class KafkaTransport : ITransport
{
    private readonly KafkaTransportOptions _options;
    private readonly IProducer<byte[]?, byte[]?> _producer;
    private readonly IAdminClient _admin;
    private readonly ConcurrentDictionary<string, int> _partitions = new(StringComparer.Ordinal);
    private readonly Lazy<IConsumer<byte[]?, byte[]?>> _reader;
    private readonly object _readerLock = new();
    private readonly Lock _enqueue = new();
    private readonly Queue<Backlogged> _backlog = new();
    private bool _draining;
    private long _queueFullWaits;
    private int _disposed;

    /// <summary>A record waiting for room in the producer's queue, and its caller.</summary>
    private sealed record Backlogged(KafkaPartition Target, Message<byte[]?, byte[]?> Message, CancellationToken Cancellation)
    {
        public readonly TaskCompletionSource<Task<DeliveryResult<byte[]?, byte[]?>>> Queued = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public KafkaTransport(KafkaTransportOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _producer = Build(() => new ProducerBuilder<byte[]?, byte[]?>(options.ProducerConfig()).Build(), "producer");
        _admin = new DependentAdminClientBuilder(_producer.Handle).Build();
        // For offsets and reads outside any group: never subscribes, never commits.
        _reader = new Lazy<IConsumer<byte[]?, byte[]?>>(() =>
            Build(() => new ConsumerBuilder<byte[]?, byte[]?>(options.ConsumerConfig("herald-reader-" + Guid.NewGuid().ToString("N"), AutoOffsetReset.Earliest)).Build(), "reader"));
    }

    internal KafkaTransportOptions Options => _options;

    public string Name => "kafka";

    /// <summary>Builds a client, turning librdkafka's refusal of a property into an error that names it.</summary>
    internal static T Build<T>(Func<T> build, string what)
    {
        try
        {
            return build();
        }
        catch (ArgumentException e)
        {
            throw new HeraldException($"Kafka {what} configuration refused: {e.Message} (KafkaTransportOptions.Properties)", e);
        }
        catch (InvalidOperationException e)
        {
            throw new HeraldException($"Kafka {what} configuration refused: {e.Message} (KafkaTransportOptions.Properties)", e);
        }
    }

    public async ValueTask EnsureTopicAsync(TopicSpec topic, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(topic);
        if (_options.TopicCreation == TopicCreation.BrokerAutoCreate)
        {
            // The metadata request itself asks the broker to create it.
            await WaitForTopicAsync(topic.Name, cancellationToken).ConfigureAwait(false);
            return;
        }
        if (TryGetPartitionCount(topic.Name, out _)) return;
        if (_options.TopicCreation == TopicCreation.Off)
            throw new HeraldException($"topic '{topic.Name}' does not exist on {_options.BootstrapServers} and KafkaTransportOptions.TopicCreation is Off: create it ({topic.Partitions} partitions) or let Herald create it");
        try
        {
            await _admin.CreateTopicsAsync(
                [new TopicSpecification { Name = topic.Name, NumPartitions = topic.Partitions, ReplicationFactor = _options.ReplicationFactor }],
                new CreateTopicsOptions { RequestTimeout = _options.RequestTimeout, OperationTimeout = _options.RequestTimeout }).ConfigureAwait(false);
        }
        catch (CreateTopicsException e) when (e.Results.All(r => r.Error.Code is ErrorCode.NoError or ErrorCode.TopicAlreadyExists))
        {
            // Another process created it first.
        }
        catch (CreateTopicsException e)
        {
            var error = e.Results.First(r => r.Error.Code is not (ErrorCode.NoError or ErrorCode.TopicAlreadyExists)).Error;
            throw new HeraldException($"topic '{topic.Name}' could not be created on {_options.BootstrapServers}: {error.Code} ({error.Reason})" +
                (error.Code == ErrorCode.TopicAuthorizationFailed ? "; grant CREATE on it, or create it and set KafkaTransportOptions.TopicCreation = Off" : ""), e);
        }
        catch (KafkaException e)
        {
            throw new HeraldException($"topic '{topic.Name}' could not be created on {_options.BootstrapServers}: {e.Error.Code} ({e.Error.Reason}); " +
                "a cluster without CreateTopics (librdkafka's mock cluster) needs KafkaTransportOptions.TopicCreation = BrokerAutoCreate", e);
        }
        await WaitForTopicAsync(topic.Name, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Metadata reaches every broker a little after a creation: waits for the topic to appear.</summary>
    private async Task WaitForTopicAsync(string topic, CancellationToken cancellationToken)
    {
        _partitions.TryRemove(topic, out _);
        var deadline = DateTime.UtcNow + _options.RequestTimeout;
        while (!TryGetPartitionCount(topic, out _))
        {
            if (DateTime.UtcNow > deadline) throw new HeraldException($"topic '{topic}' did not appear in the metadata of {_options.BootstrapServers} within {_options.RequestTimeout}");
            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
    }

    public int GetPartitionCount(string topic) =>
        TryGetPartitionCount(topic, out var count) ? count : throw new UnknownTopicException(topic);

    private bool TryGetPartitionCount(string topic, out int count)
    {
        if (_partitions.TryGetValue(topic, out count)) return true;
        var metadata = _admin.GetMetadata(topic, _options.RequestTimeout);
        var found = metadata.Topics.FirstOrDefault(t => t.Topic == topic);
        if (found is null || found.Error.Code != ErrorCode.NoError || found.Partitions.Count == 0)
        {
            if (found is not null && found.Error.Code is not (ErrorCode.NoError or ErrorCode.UnknownTopicOrPart or ErrorCode.LeaderNotAvailable))
                throw new HeraldException($"metadata of topic '{topic}' from {_options.BootstrapServers}: {found.Error.Code} ({found.Error.Reason})");
            count = 0;
            return false;
        }
        count = found.Partitions.Count;
        _partitions[topic] = count;
        return true;
    }

    public async ValueTask<long> ProduceAsync(string topic, int partition, OutgoingRecord record, CancellationToken cancellationToken = default)
    {
        var result = await ProduceOneAsync(topic, partition, record, cancellationToken).ConfigureAwait(false);
        return result.Offset.Value;
    }

    /// <summary>Every record enqueued in order, then all awaited: the idempotent producer keeps a
    /// partition's records in order and without gaps. A record waits to be enqueued while the
    /// producer's queue is full, and the ones after it wait behind it, so a full queue never lets a
    /// later record overtake. A record refused before it was queued (too large) stops the ones
    /// after it from being queued at all.</summary>
    public async ValueTask ProduceManyAsync(string topic, int partition, IReadOnlyList<OutgoingRecord> records, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        var pending = new List<Task<DeliveryResult<byte[]?, byte[]?>>>(records.Count);
        for (var i = 0; i < records.Count; i++)
        {
            Task<DeliveryResult<byte[]?, byte[]?>> delivery;
            try
            {
                delivery = await EnqueueAsync(topic, partition, records[i], cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                for (var j = i + 1; j < records.Count; j++) records[j].Owner?.Dispose();
                throw;
            }
            pending.Add(delivery);
            if (delivery.IsFaulted)
            {
                for (var j = i + 1; j < records.Count; j++) records[j].Owner?.Dispose();
                break;
            }
        }
        foreach (var delivery in pending) await DeliveredAsync(topic, partition, delivery).ConfigureAwait(false);
    }

    private async Task<DeliveryResult<byte[]?, byte[]?>> ProduceOneAsync(string topic, int partition, OutgoingRecord record, CancellationToken cancellationToken) =>
        await DeliveredAsync(topic, partition, await EnqueueAsync(topic, partition, record, cancellationToken).ConfigureAwait(false)).ConfigureAwait(false);

    /// <summary>Puts a record in the producer's queue, waiting while the queue is full
    /// (backpressure, not an error); returns its delivery. Records are queued in the order they
    /// are given, across callers: once one waits for room, the ones after it wait behind it in a
    /// backlog that one drainer empties in order. (Confluent.Kafka reports a full queue as a task
    /// that has already failed, before anything was queued.)</summary>
    private ValueTask<Task<DeliveryResult<byte[]?, byte[]?>>> EnqueueAsync(string topic, int partition, OutgoingRecord record, CancellationToken cancellationToken)
    {
        Message<byte[]?, byte[]?> message;
        try
        {
            message = ToMessage(record);
        }
        finally
        {
            record.Owner?.Dispose(); // copied
        }
        var target = new KafkaPartition(topic, new Partition(partition));
        // Cancellation counts until the record is queued, not after: a queued record is sent
        // whatever its caller does (ProduceAsync given the token would report a record it still
        // writes as cancelled).
        cancellationToken.ThrowIfCancellationRequested();
        Backlogged waiting;
        lock (_enqueue)
        {
            if (_backlog.Count == 0)
            {
                var delivery = _producer.ProduceAsync(target, message, CancellationToken.None);
                if (!IsQueueFull(delivery)) return ValueTask.FromResult(delivery);
            }
            waiting = new Backlogged(target, message, cancellationToken);
            _backlog.Enqueue(waiting);
            _queueFullWaits++;
            if (!_draining)
            {
                _draining = true;
                _ = Task.Run(DrainBacklogAsync, CancellationToken.None);
            }
        }
        return new ValueTask<Task<DeliveryResult<byte[]?, byte[]?>>>(waiting.Queued.Task);
    }

    /// <summary>How many records have waited for room in the producer's queue (for tests).</summary>
    internal long QueueFullWaits
    {
        get
        {
            lock (_enqueue) return _queueFullWaits;
        }
    }

    /// <summary>Whether a produce was refused for want of room (reading the exception observes it).</summary>
    private static bool IsQueueFull(Task<DeliveryResult<byte[]?, byte[]?>> delivery) =>
        delivery.IsFaulted && delivery.Exception!.InnerException is ProduceException<byte[]?, byte[]?> { Error.Code: ErrorCode.Local_QueueFull };

    /// <summary>Queues the backlog in order as the producer's queue makes room.</summary>
    private async Task DrainBacklogAsync()
    {
        var wait = 1;
        while (true)
        {
            lock (_enqueue)
            {
                while (_backlog.TryPeek(out var next))
                {
                    if (next.Cancellation.IsCancellationRequested)
                    {
                        _backlog.Dequeue();
                        next.Queued.TrySetCanceled(next.Cancellation);
                        continue;
                    }
                    var delivery = _producer.ProduceAsync(next.Target, next.Message, CancellationToken.None);
                    if (IsQueueFull(delivery)) break;
                    _backlog.Dequeue();
                    next.Queued.TrySetResult(delivery);
                    wait = 1;
                }
                if (_backlog.Count == 0)
                {
                    _draining = false;
                    return;
                }
            }
            await Task.Delay(wait).ConfigureAwait(false);
            wait = Math.Min(wait * 2, 50);
        }
    }

    private static async Task<DeliveryResult<byte[]?, byte[]?>> DeliveredAsync(string topic, int partition, Task<DeliveryResult<byte[]?, byte[]?>> delivery)
    {
        try
        {
            return await delivery.ConfigureAwait(false);
        }
        catch (ProduceException<byte[]?, byte[]?> e) when (e.Error.Code == ErrorCode.Local_UnknownTopic || e.Error.Code == ErrorCode.UnknownTopicOrPart)
        {
            throw new UnknownTopicException(topic);
        }
        catch (ProduceException<byte[]?, byte[]?> e)
        {
            throw new HeraldException($"Kafka refused a record for {topic}/{partition}: {e.Error.Code} ({e.Error.Reason})", e);
        }
    }

    private static Message<byte[]?, byte[]?> ToMessage(OutgoingRecord record)
    {
        var headers = new Headers();
        if (record.Headers is { } given)
            for (var i = 0; i < given.Count; i++) headers.Add(given[i].Key, given[i].Value.ToArray());
        return new Message<byte[]?, byte[]?>
        {
            Key = record.Key?.ToArray(),
            Value = record.Value?.ToArray(),
            Headers = headers,
            Timestamp = record.TimestampMs >= 0 ? new Timestamp(record.TimestampMs, TimestampType.CreateTime) : Timestamp.Default,
        };
    }

    internal static TransportRecord ToRecord(ConsumeResult<byte[]?, byte[]?> result)
    {
        var headers = new List<LogHeader>(result.Message.Headers?.Count ?? 0);
        if (result.Message.Headers is { } given)
            foreach (var header in given) headers.Add(new LogHeader(header.Key, header.GetValueBytes() ?? []));
        return new TransportRecord(result.Topic, result.Partition.Value, result.Offset.Value, result.Message.Timestamp.UnixTimestampMs,
            Bytes(result.Message.Key), Bytes(result.Message.Value), headers);
    }

    /// <summary>A null key or value stays null: a null byte[] converts to an empty, present
    /// memory, and so does a bare null in a conditional with a memory on its other side.</summary>
    private static ReadOnlyMemory<byte>? Bytes(byte[]? bytes) => bytes is null ? default(ReadOnlyMemory<byte>?) : new ReadOnlyMemory<byte>(bytes);

    public PartitionOffsets GetOffsets(string topic, int partition)
    {
        WatermarkOffsets watermarks;
        lock (_readerLock) watermarks = _reader.Value.QueryWatermarkOffsets(new KafkaPartition(topic, new Partition(partition)), _options.RequestTimeout);
        return new PartitionOffsets(watermarks.Low.Value, watermarks.High.Value);
    }

    public async IAsyncEnumerable<TransportRecord> ReadAsync(string topic, int partition, long fromOffset, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (start, end) = GetOffsets(topic, partition);
        var next = Math.Max(fromOffset, start);
        if (next >= end) yield break;
        // A consumer of its own for the read (no group): reads are rare (dead letters, replays).
        using var consumer = Build(() => new ConsumerBuilder<byte[]?, byte[]?>(_options.ConsumerConfig("herald-read-" + Guid.NewGuid().ToString("N"), AutoOffsetReset.Earliest)).Build(), "reader");
        consumer.Assign(new TopicPartitionOffset(topic, new Partition(partition), new Offset(next)));
        while (next < end)
        {
            var result = await Task.Run(() => consumer.Consume(cancellationToken), cancellationToken).ConfigureAwait(false);
            if (result is null || result.IsPartitionEOF) continue;
            next = result.Offset.Value + 1;
            yield return ToRecord(result);
        }
        consumer.Close();
    }

    public ITransportConsumer CreateConsumer(ConsumerSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return new KafkaConsumer(this, spec);
    }

    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return ValueTask.CompletedTask;
        lock (_enqueue)
        {
            while (_backlog.TryDequeue(out var left))
                left.Queued.TrySetException(new ObjectDisposedException(nameof(KafkaTransport), "the Kafka transport was disposed before the record found room in the producer's queue"));
        }
        try
        {
            _producer.Flush(_options.RequestTimeout);
        }
        finally
        {
            if (_reader.IsValueCreated)
            {
                lock (_readerLock) _reader.Value.Dispose();
            }
            _admin.Dispose();
            _producer.Dispose();
        }
        return ValueTask.CompletedTask;
    }

    internal static HeraldPartition ToHerald(KafkaPartition tp) => new(tp.Topic, tp.Partition.Value);

    internal static KafkaPartition ToKafka(HeraldPartition tp) => new(tp.Topic, new Partition(tp.Partition));
}
