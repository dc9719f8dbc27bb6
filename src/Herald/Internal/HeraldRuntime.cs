using Herald.Diagnostics;
using Herald.Internal.Relay;
using Herald.Serialization;
using Herald.Subscriptions;
using Herald.Transport;
using Microsoft.Extensions.Logging;

namespace Herald.Internal;

/// <summary>A subscription as validated at start: its group, options and bindings.</summary>
internal sealed class SubscriptionDefinition(string group, SubscriptionOptions options, Dictionary<EventMapping, HandlerBinding> bindings)
{
    public string Group { get; } = group;
    public SubscriptionOptions Options { get; } = options;
    public Dictionary<EventMapping, HandlerBinding> Bindings { get; } = bindings;

    /// <summary>The topics of the handled event types, in declaration order.</summary>
    public List<string> Topics { get; } = bindings.Keys.Select(m => m.Topic).Distinct(StringComparer.Ordinal).ToList();
}

/// <summary>Everything one Herald instance shares: transport, serializer, mappings, telemetry.</summary>
internal sealed class HeraldRuntime(
    HeraldOptions options,
    ITransport transport,
    IEventSerializer serializer,
    EventTypeMap map,
    TopicTable topics,
    IReadOnlyList<SubscriptionDefinition> subscriptions,
    HeraldTelemetry telemetry,
    ILoggerFactory loggerFactory,
    IServiceProvider services,
    TimeProvider time,
    Outbox.IOutboxStore? outboxStore = null,
    Inbox.IInboxStore? inboxStore = null,
    Dedupe.IDedupeStore? dedupeStore = null,
    Outbox.OutboxOptions? outboxOptions = null)
{
    public HeraldOptions Options { get; } = options;
    public ITransport Transport { get; } = transport;
    public IEventSerializer Serializer { get; } = serializer;
    public EventTypeMap Map { get; } = map;
    public TopicTable Topics { get; } = topics;
    public IReadOnlyList<SubscriptionDefinition> Subscriptions { get; } = subscriptions;
    public HeraldTelemetry Telemetry { get; } = telemetry;
    public ILoggerFactory LoggerFactory { get; } = loggerFactory;
    public IServiceProvider Services { get; } = services;
    public TimeProvider Time { get; } = time;
    public KeyRoutingRegistry Routing { get; } = new();
    // Made together: the outbox builds its events with the publisher, and wakes the relay through the signal.
    private readonly (Publisher Publisher, OutboxSignal? Signal, Herald.Outbox.TransactionalOutbox? Outbox) _made =
        Make(transport, topics, map, serializer, telemetry, options, time, outboxStore, outboxOptions);

    public Publisher Publisher => _made.Publisher;

    /// <summary>Wakes the outbox relay; null without a store.</summary>
    public OutboxSignal? OutboxSignal => _made.Signal;

    /// <summary>The outbox in Herald's store; null without one.</summary>
    public Herald.Outbox.TransactionalOutbox? Outbox => _made.Outbox;

    /// <summary>The inbox in Herald's store; null without one.</summary>
    public Inbox.IInboxStore? Inbox { get; } = inboxStore;

    /// <summary>The TTL dedupe store; null without one.</summary>
    public Dedupe.IDedupeStore? Dedupe { get; } = dedupeStore;

    private static (Publisher, OutboxSignal?, Herald.Outbox.TransactionalOutbox?) Make(ITransport transport, TopicTable topics, EventTypeMap map, IEventSerializer serializer,
        HeraldTelemetry telemetry, HeraldOptions options, TimeProvider time, Outbox.IOutboxStore? outboxStore, Outbox.OutboxOptions? outboxOptions)
    {
        var publisher = new Publisher(transport, topics, map, serializer, telemetry, options);
        if (outboxStore is null) return (publisher, null, null);
        var signal = new OutboxSignal(time);
        return (publisher, signal, new Herald.Outbox.TransactionalOutbox(publisher, outboxStore, signal, time, outboxOptions ?? new Outbox.OutboxOptions()));
    }

    /// <summary>Creates every topic in use: declared ones, mapped ones, and the retry and
    /// dead-letter topics of each (topic, group), with the partitions of their topic.</summary>
    public async Task EnsureTopicsAsync(CancellationToken cancellationToken)
    {
        foreach (var mapping in Map.All) await Topics.PartitionsAsync(mapping.Topic, cancellationToken).ConfigureAwait(false);
        foreach (var s in Subscriptions)
        {
            foreach (var topic in s.Topics)
            {
                var partitions = await Topics.PartitionsAsync(topic, cancellationToken).ConfigureAwait(false);
                foreach (var name in new[] { TopicNames.Retry(topic, s.Group), TopicNames.DeadLetter(topic, s.Group) })
                {
                    var have = await Topics.EnsureAsync(new TopicSpec(name, partitions), cancellationToken).ConfigureAwait(false);
                    if (have != partitions)
                        throw new InvalidOperationException($"topic '{name}' has {have} partitions but '{topic}' has {partitions}; they must match so that a key's retries stay in its partition");
                }
            }
        }
    }
}
