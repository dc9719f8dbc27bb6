using System.Diagnostics.Metrics;
using Herald.DeadLetters;
using Herald.Diagnostics;
using Herald.Embedded;
using Herald.Hosting;
using Herald.Internal;
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
        return services;
    }

    private static HeraldRuntime Build(HeraldBuilder builder, IServiceProvider services)
    {
        builder.Options.Validate();
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
            services.GetRequiredService<TimeProvider>());
    }
}
