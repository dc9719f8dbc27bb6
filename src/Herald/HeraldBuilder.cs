using System.Text.Json;
using Herald.Embedded;
using Herald.Internal;
using Herald.Log;
using Herald.Serialization;
using Herald.Subscriptions;
using Herald.Transport;
using Microsoft.Extensions.DependencyInjection;

namespace Herald;

/// <summary>Wires Herald: the transport, the serializer, event-to-topic mappings, topics and
/// subscriptions. Used through <see cref="HeraldServiceCollectionExtensions.AddHerald"/>.</summary>
public sealed class HeraldBuilder
{
    internal readonly List<Action<EventTypeMap>> Events = [];
    internal readonly Dictionary<string, TopicSpec> Topics = new(StringComparer.Ordinal);
    internal readonly List<SubscriptionBuilder> Subscriptions = [];
    internal Func<IServiceProvider, ITransport>? TransportFactory;
    internal IEventSerializer? Serializer;

    internal HeraldBuilder(IServiceCollection services) => Services = services;

    public IServiceCollection Services { get; }

    public HeraldOptions Options { get; } = new();

    /// <summary>The embedded durable log in <paramref name="directory"/> (the default is
    /// "herald-data" under the working directory).</summary>
    public HeraldBuilder UseEmbedded(string directory, Action<EmbeddedLogOptions>? configure = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var options = new EmbeddedLogOptions();
        configure?.Invoke(options);
        TransportFactory = _ => new EmbeddedTransport(directory, options);
        return this;
    }

    /// <summary>Any transport, such as Kafka.</summary>
    public HeraldBuilder UseTransport(Func<IServiceProvider, ITransport> factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        TransportFactory = factory;
        return this;
    }

    /// <summary>Herald's transactional outbox (with its relay, unless
    /// <see cref="Outbox.OutboxOptions.RunRelay"/> is off) and inbox in the service's own database,
    /// beside its tables, so that state changes, the events they cause and the ids of the events
    /// handled commit together. Store packages call this: <c>h.UseSqlite(...)</c>, <c>h.UsePostgres(...)</c>.</summary>
    public HeraldBuilder UseStore<TStore>(Func<IServiceProvider, TStore> store, Action<Outbox.OutboxOptions>? outbox = null, Action<Inbox.InboxOptions>? inbox = null)
        where TStore : class, Outbox.IOutboxStore, Inbox.IInboxStore
    {
        ArgumentNullException.ThrowIfNull(store);
        if (StoreType is not null) throw new InvalidOperationException($"Herald's store is configured twice ({StoreType.Name} and {typeof(TStore).Name}): call UseStore (or UseSqlite/UsePostgres) once");
        outbox?.Invoke(OutboxOptions);
        inbox?.Invoke(InboxOptions);
        StoreType = typeof(TStore);
        Services.AddSingleton(store);
        Services.AddSingleton<Outbox.IOutboxStore>(sp => sp.GetRequiredService<TStore>());
        Services.AddSingleton<Inbox.IInboxStore>(sp => sp.GetRequiredService<TStore>());
        return this;
    }

    internal Type? StoreType;

    internal Outbox.OutboxOptions OutboxOptions { get; } = new();

    internal Inbox.InboxOptions InboxOptions { get; } = new();

    /// <summary>The TTL dedupe store that subscriptions with <see cref="SubscriptionBuilder.UseDedupe"/>
    /// use: <see cref="Dedupe.MemoryDedupeStore"/> (one process, bounded), or a store package's
    /// (SQLite, Redis).</summary>
    public HeraldBuilder UseDedupe(Func<IServiceProvider, Dedupe.IDedupeStore> store)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (HasDedupeStore) throw new InvalidOperationException("the dedupe store is configured twice: call UseDedupe once");
        HasDedupeStore = true;
        Services.AddSingleton(store);
        return this;
    }

    internal bool HasDedupeStore;

    public HeraldBuilder UseSerializer(IEventSerializer serializer)
    {
        ArgumentNullException.ThrowIfNull(serializer);
        Serializer = serializer;
        return this;
    }

    /// <summary>System.Text.Json with these options (set a source-generated context as their
    /// <see cref="JsonSerializerOptions.TypeInfoResolver"/> to avoid reflection).</summary>
    public HeraldBuilder UseSystemTextJson(JsonSerializerOptions options) => UseSerializer(new SystemTextJsonEventSerializer(options));

    /// <summary>Declares a topic. <paramref name="embedded"/> tunes it on the embedded log (durability, segments, retention).</summary>
    public HeraldBuilder Topic(string name, int partitions = 0, Action<TopicOptions>? embedded = null)
    {
        EmbeddedLog.ValidateTopicName(name);
        TopicOptions? options = null;
        if (embedded is not null)
        {
            options = new TopicOptions();
            embedded(options);
        }
        Topics[name] = new TopicSpec(name, partitions, options);
        return this;
    }

    /// <summary>Maps an event type to a topic. <paramref name="key"/> gives the partition key (events
    /// of one key stay in order); <paramref name="typeName"/> is its <c>ce_type</c>, by default the
    /// type's name. The returned builder sets the version of the type's data and the upcasters from
    /// older versions (<see cref="EventBuilder{T}"/>, docs/versioning.md).</summary>
    public EventBuilder<T> Event<T>(string topic, Func<T, string?>? key = null, string? typeName = null)
    {
        EmbeddedLog.ValidateTopicName(topic);
        var name = typeName ?? typeof(T).Name;
        ArgumentException.ThrowIfNullOrWhiteSpace(name, nameof(typeName));
        var builder = new EventBuilder<T>(name);
        Events.Add(map => map.Add(builder.Build(topic, key)));
        return builder;
    }

    /// <summary>Adds a subscription: a consumer group and the handlers it runs.</summary>
    public HeraldBuilder Subscribe(string group, Action<SubscriptionBuilder> configure)
    {
        EmbeddedLog.ValidateTopicName(group);
        ArgumentNullException.ThrowIfNull(configure);
        foreach (var s in Subscriptions)
            if (s.Group == group) throw new ArgumentException($"subscription '{group}' is declared twice", nameof(group));
        var builder = new SubscriptionBuilder(group, Services);
        configure(builder);
        Subscriptions.Add(builder);
        return this;
    }
}
