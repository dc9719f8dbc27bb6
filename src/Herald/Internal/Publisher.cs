using System.Diagnostics;
using System.Text;
using Herald.Diagnostics;
using Herald.Serialization;
using Herald.Transport;

namespace Herald.Internal;

/// <summary>Publishes mapped events: serializes into a pooled buffer, writes the CloudEvents
/// headers (with the event type's current version as <c>ce_dataversion</c>), picks the partition by murmur2 of the key and waits for the transport's durability.</summary>
internal sealed class Publisher(
    ITransport transport,
    TopicTable topics,
    EventTypeMap map,
    IEventSerializer serializer,
    HeraldTelemetry telemetry,
    HeraldOptions options) : IEventPublisher
{
    private static readonly ReadOnlyMemory<byte> SpecVersion = "1.0"u8.ToArray();
    private static readonly byte[] TypeField = PublishBuffer.Field(HeaderNames.Type), IdField = PublishBuffer.Field(HeaderNames.Id),
        SourceField = PublishBuffer.Field(HeaderNames.Source), SpecVersionField = PublishBuffer.Field(HeaderNames.SpecVersion),
        TimeField = PublishBuffer.Field(HeaderNames.Time), ContentTypeField = PublishBuffer.Field(HeaderNames.ContentType),
        TraceParentField = PublishBuffer.Field(HeaderNames.TraceParent), TraceStateField = PublishBuffer.Field(HeaderNames.TraceState),
        CorrelationIdField = PublishBuffer.Field(HeaderNames.CorrelationId), CausationIdField = PublishBuffer.Field(HeaderNames.CausationId),
        DataVersionField = PublishBuffer.Field(HeaderNames.DataVersion);
    private readonly ReadOnlyMemory<byte> _source = Encoding.UTF8.GetBytes(options.Source);
    private readonly ReadOnlyMemory<byte> _contentType = Encoding.UTF8.GetBytes(serializer.ContentType);
    private readonly ITopicEventSerializer? _topicSerializer = serializer as ITopicEventSerializer;
    private readonly PublishBuffer.Pool _pool = new();
    private int _roundRobin;

    // Event ids: 64 random bits drawn once per publisher and a 64-bit counter, shaped as a GUID.
    // Unique without a getrandom system call per event, which Guid.NewGuid makes (pipeline
    // benchmark: 3% of all CPU time went to the kernel's random generator).
    private readonly long _idSalt = BitConverter.ToInt64(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));
    private long _idCounter;

    private Guid NextId()
    {
        Span<byte> bytes = stackalloc byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(bytes, _idSalt);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(bytes[8..], Interlocked.Increment(ref _idCounter));
        return new Guid(bytes, bigEndian: true);
    }

    /// <summary>Publishes without a state machine of its own when nothing traces or counts publishes:
    /// the record is built synchronously and the transport's completion is handed back as it is;
    /// the pooled buffer goes back to its pool when the transport has copied the record (pipeline
    /// benchmark). With a listener, <see cref="PublishObservedAsync"/> keeps the span open and
    /// counts the event once it is durable.</summary>
    public ValueTask PublishAsync<T>(T evt, PublishOptions? options = null, CancellationToken cancellationToken = default)
    {
        // Inside a handler with the inbox: into the outbox, in the handler's transaction.
        if (EventContext.Current is { UnitOfWork: { } unit }) return unit.PublishAsync(evt, options, cancellationToken);
        if (telemetry.ObservesPublishing) return PublishObservedAsync(evt, options, cancellationToken);
        try
        {
            ArgumentNullException.ThrowIfNull(evt);
            var mapping = map.Get<T>();
            var count = mapping.Partitions;
            if (count == 0)
            {
                var partitions = topics.PartitionsAsync(mapping.Topic, cancellationToken);
                if (!partitions.IsCompletedSuccessfully) return PublishObservedAsync(evt, options, cancellationToken); // the topic is being created
                mapping.Partitions = count = partitions.Result;
            }
            var record = Build(evt, mapping, options, count, out var partition);
            return transport.SendAsync(mapping.Topic, partition, record, cancellationToken);
        }
        catch (Exception e)
        {
            return ValueTask.FromException(e);
        }
    }

    // Pooled state machines: a durable publish always suspends (it waits for fsync), and a new
    // box per publish was 200 bytes of garbage per event (pipeline benchmark).
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask PublishObservedAsync<T>(T evt, PublishOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(evt);
        var mapping = map.Get<T>();
        var partitions = await topics.PartitionsAsync(mapping.Topic, cancellationToken).ConfigureAwait(false);
        using var activity = telemetry.StartPublish(transport.Name, mapping.Topic);
        try
        {
            var record = Build(evt, mapping, options, partitions, out var partition); // after the span starts: it carries its traceparent
            await transport.SendAsync(mapping.Topic, partition, record, cancellationToken).ConfigureAwait(false);
            telemetry.Published(mapping.Topic);
        }
        catch (Exception e) when (activity is not null)
        {
            activity.SetStatus(ActivityStatusCode.Error, e.Message);
            activity.SetTag("error.type", e.GetType().FullName);
            throw;
        }
    }

    /// <summary>The event as the outbox stores it: built as a publish builds it (key, value,
    /// CloudEvents headers with a new id, correlation and causation inside a handler), copied out
    /// of the pooled buffer.</summary>
    internal Outbox.OutboxMessage BuildForOutbox<T>(T evt, PublishOptions? options, long nowMs)
    {
        ArgumentNullException.ThrowIfNull(evt);
        var mapping = map.Get<T>();
        var record = Build(evt, mapping, options, 1, out _);
        using var owner = record.Owner;
        var headers = (Herald.Log.IEncodedHeaders)record.Headers!;
        return new Outbox.OutboxMessage(0, mapping.Topic, record.Key?.ToArray(), record.Value!.Value.ToArray(), headers.EncodedFields.ToArray(), headers.Count, nowMs, 0);
    }

    /// <summary>Serializes the event and writes its key and CloudEvents headers into a pooled
    /// buffer, which the record owns from then on (the transport disposes it).</summary>
    private OutgoingRecord Build<T>(T evt, EventMapping<T> mapping, PublishOptions? options, int partitions, out int partition)
    {
        var key = options?.Key ?? mapping.Key?.Invoke(evt);
        var buffer = _pool.Rent();
        try
        {
            if (_topicSerializer is not null) _topicSerializer.Serialize(evt, mapping.Topic, buffer);
            else serializer.Serialize(evt, buffer);
            var valueLength = buffer.Written;
            var keyStart = buffer.Written;
            if (key is not null)
            {
                buffer.Advance(Encoding.UTF8.GetBytes(key, buffer.GetSpan(Encoding.UTF8.GetMaxByteCount(key.Length))));
                partition = Partitioner.ForKey(buffer.Slice(keyStart, buffer.Written - keyStart).Span, partitions);
            }
            else partition = (int)((uint)Interlocked.Increment(ref _roundRobin) % (uint)partitions);
            var keyLength = buffer.Written - keyStart;

            // ce_type first, ce_dataversion second: every consumer looks both up for every event,
            // scanning headers in order.
            buffer.BeginHeaders();
            buffer.AddHeader(TypeField, mapping.NameUtf8);
            buffer.AddHeader(DataVersionField, mapping.VersionUtf8);
            Span<byte> scratch = stackalloc byte[40];
            if (options?.Id is { } id) buffer.AddHeader(IdField, id);
            else
            {
                NextId().TryFormat(scratch, out var n);
                buffer.AddHeader(IdField, scratch[..n]);
            }
            buffer.AddHeader(SourceField, _source.Span);
            buffer.AddHeader(SpecVersionField, SpecVersion.Span);
            buffer.AddHeader(TimeField, scratch[..EventTime.Format(DateTime.UtcNow, scratch)]);
            buffer.AddHeader(ContentTypeField, _contentType.Span);
            if (Activity.Current is { IdFormat: ActivityIdFormat.W3C } current)
            {
                buffer.AddHeader(TraceParentField, current.Id!);
                if (current.TraceStateString is { Length: > 0 } state) buffer.AddHeader(TraceStateField, state);
            }
            // Inside a handler, follow-up events carry the flow's correlation id and name their cause.
            var cause = EventContext.Current?.EnvelopeIfAvailable;
            if ((options?.CorrelationId ?? cause?.CorrelationId) is { } correlation) buffer.AddHeader(CorrelationIdField, correlation);
            if ((options?.CausationId ?? cause?.Id) is { } causation) buffer.AddHeader(CausationIdField, causation);
            return new OutgoingRecord(key is null ? null : buffer.Slice(keyStart, keyLength), buffer.Slice(0, valueLength), buffer) { Owner = buffer };
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }
}
