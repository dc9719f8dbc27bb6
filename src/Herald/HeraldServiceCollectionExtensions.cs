using System.Diagnostics.Metrics;
using Herald.DeadLetters;
using Herald.Diagnostics;
using Herald.Embedded;
using Herald.Hosting;
using Herald.Internal;
using Herald.Internal.Relay;
using Herald.Serialization;
using Herald.Subscriptions;
using Herald.Transport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Herald;

public static class HeraldServiceCollectionExtensions
{
    /// <summary>Adds Herald: <see cref="IEventPublisher"/>, <see cref="DeadLetterQueue"/>, the
    /// subscriptions as a hosted service, and the transport (the embedded log in "herald-data"
    /// unless configured). Options are validated when the host starts.</summary>
    public static IServiceCollection AddHerald(this IServiceCollection services, Action<HeraldBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        var builder = new HeraldBuilder(services);
        configure(builder);
        var transportFactory = builder.TransportFactory ?? (_ => new EmbeddedTransport(Path.Combine(Directory.GetCurrentDirectory(), "herald-data")));

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new HeraldTelemetry(sp.GetService<IMeterFactory>()));
        services.AddSingleton<ITransport>(transportFactory);
        services.AddSingleton(sp => Build(builder, sp));
        services.AddSingleton<IEventPublisher>(sp => sp.GetRequiredService<HeraldRuntime>().Publisher);
        services.AddSingleton(sp => new DeadLetterQueue(sp.GetRequiredService<HeraldRuntime>()));
        services.AddHostedService(sp => new HeraldHostedService(sp.GetRequiredService<HeraldRuntime>()));
        if (builder.StoreType is not null) AddStores(services, builder);
        return services;
    }

    /// <summary>The outbox (public, for application code), its relay and the inbox's janitor.</summary>
    private static void AddStores(IServiceCollection services, HeraldBuilder builder)
    {
        services.AddSingleton(sp => sp.GetRequiredService<HeraldRuntime>().Outbox!); // TransactionalOutbox
        if (builder.OutboxOptions.RunRelay)
        {
            services.AddSingleton(sp =>
            {
                var runtime = sp.GetRequiredService<HeraldRuntime>();
                return new OutboxRelay(runtime.Outbox!.Store, runtime.Transport, runtime.Topics, builder.OutboxOptions, runtime.OutboxSignal!,
                    runtime.Telemetry, runtime.Time, runtime.LoggerFactory.CreateLogger("Herald.Outbox"));
            });
            // After Herald's own hosted service (registered first): topics exist when the relay starts.
            services.AddHostedService(sp => sp.GetRequiredService<OutboxRelay>());
        }
        services.AddHostedService(sp =>
        {
            var runtime = sp.GetRequiredService<HeraldRuntime>();
            return new InboxJanitor(sp.GetRequiredService<Inbox.IInboxStore>(), builder.InboxOptions, runtime.Subscriptions, runtime.Time,
                runtime.LoggerFactory.CreateLogger("Herald.Inbox"));
        });
    }

    private static HeraldRuntime Build(HeraldBuilder builder, IServiceProvider services)
    {
        builder.Options.Validate();
        if (builder.StoreType is not null)
        {
            builder.OutboxOptions.Validate();
            builder.InboxOptions.Validate();
        }
        var map = new EventTypeMap();
        foreach (var add in builder.Events) add(map);
        var definitions = new List<SubscriptionDefinition>();
        foreach (var s in builder.Subscriptions)
        {
            s.Options.Validate(s.Group);
            if (s.Bindings.Count == 0) throw new ArgumentException($"subscription '{s.Group}' handles no event type", nameof(builder));
            var bindings = new Dictionary<EventMapping, HandlerBinding>();
            foreach (var bind in s.Bindings)
            {
                var binding = bind(map);
                if (!bindings.TryAdd(binding.Mapping, binding))
                    throw new ArgumentException($"subscription '{s.Group}' has two handlers for {binding.Mapping.ClrType.Name}; use one handler per event type per group, or another group", nameof(builder));
            }
            foreach (var topic in bindings.Keys.Select(m => m.Topic).Distinct())
                foreach (var name in new[] { TopicNames.Retry(topic, s.Group), TopicNames.DeadLetter(topic, s.Group) })
                    if (name.Length > 249) throw new ArgumentException($"subscription '{s.Group}' on topic '{topic}' makes topic name '{name}' longer than 249 characters", nameof(builder));
            if (s.Options.Idempotency == Idempotency.Inbox && builder.StoreType is null)
                throw new ArgumentException($"subscription '{s.Group}' uses the inbox, which lives in Herald's store: add h.UseSqlite(...) or h.UsePostgres(...)", nameof(builder));
            if (s.Options.Idempotency == Idempotency.Dedupe && !builder.HasDedupeStore)
                throw new ArgumentException($"subscription '{s.Group}' uses a dedupe store, and none is configured: add h.UseDedupe(...)", nameof(builder));
            definitions.Add(new SubscriptionDefinition(s.Group, s.Options, bindings));
        }
        var transport = services.GetRequiredService<ITransport>();
        var topics = new TopicTable(transport, builder.Topics, builder.Options.DefaultPartitions);
        return new HeraldRuntime(
            builder.Options,
            transport,
            builder.Serializer ?? new SystemTextJsonEventSerializer(),
            map,
            topics,
            definitions,
            services.GetRequiredService<HeraldTelemetry>(),
            services.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance,
            services,
            services.GetRequiredService<TimeProvider>(),
            services.GetService<Outbox.IOutboxStore>(),
            services.GetService<Inbox.IInboxStore>(),
            services.GetService<Dedupe.IDedupeStore>(),
            builder.OutboxOptions);
    }
}
