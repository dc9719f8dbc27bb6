using Herald.Internal;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Herald.Subscriptions;

/// <summary>Declares what one consumer group handles. Every group gets every event of its topics;
/// members of a group (in this process or, with Kafka, in others) share the partitions.</summary>
public sealed class SubscriptionBuilder
{
    private readonly IServiceCollection _services;
    internal readonly List<Func<EventTypeMap, HandlerBinding>> Bindings = [];

    internal SubscriptionBuilder(string group, IServiceCollection services)
    {
        Group = group;
        _services = services;
    }

    public string Group { get; }

    public SubscriptionOptions Options { get; } = new();

    /// <summary>Handles <typeparamref name="T"/> with <typeparamref name="THandler"/>, resolved from
    /// a DI scope (registered as scoped unless already registered).</summary>
    public SubscriptionBuilder Handle<T, THandler>() where THandler : class, IEventHandler<T>
    {
        _services.TryAddScoped<THandler>();
        Bindings.Add(map => new TypeHandlerBinding<T, THandler>(map.Get<T>()));
        return this;
    }

    /// <summary>Handles <typeparamref name="T"/> with a delegate; services are at <see cref="EventContext.Services"/>.</summary>
    public SubscriptionBuilder Handle<T>(Func<T, EventContext, CancellationToken, ValueTask> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        Bindings.Add(map => new DelegateHandlerBinding<T>(map.Get<T>(), handler));
        return this;
    }

    /// <summary>Effectively once: each event is handled in a transaction on Herald's store that
    /// records its id in the inbox together with the handler's own effects (made through
    /// <see cref="EventContext.Connection"/> and <see cref="EventContext.Transaction"/>) and the events
    /// it publishes (which go to the outbox); a redelivery of an event whose handling committed is
    /// acknowledged without running the handler. See <see cref="Idempotency.Inbox"/>.</summary>
    public SubscriptionBuilder UseInbox()
    {
        Options.Idempotency = Idempotency.Inbox;
        return this;
    }

    /// <summary>Skips events whose id the dedupe store holds, and marks an event's id for
    /// <paramref name="ttl"/> (a day by default) once its handler succeeded. See <see cref="Idempotency.Dedupe"/>.</summary>
    public SubscriptionBuilder UseDedupe(TimeSpan? ttl = null)
    {
        Options.Idempotency = Idempotency.Dedupe;
        if (ttl is { } t) Options.DedupeTtl = t;
        return this;
    }

    public SubscriptionBuilder Configure(Action<SubscriptionOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        configure(Options);
        return this;
    }
}
