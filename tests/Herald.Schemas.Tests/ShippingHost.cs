using System.Collections.Concurrent;
using Herald.Serialization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Herald.Schemas.Tests;

/// <summary>A Herald host on the embedded log that publishes <see cref="Shipped"/> with a given
/// serializer and hands what it consumes to a queue: the schema serializers' tests in a real pipeline.</summary>
internal static class ShippingHost
{
    public static async Task<IHost> StartAsync(string log, IEventSerializer serializer, ConcurrentQueue<Shipped> seen)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Services.AddHerald(h =>
        {
            h.UseEmbedded(log);
            h.UseSerializer(serializer);
            h.Topic("shipping", partitions: 2);
            h.Event<Shipped>("shipping", e => e.OrderId);
            h.Subscribe("audit", s => s.Handle<Shipped>((e, _, _) =>
            {
                seen.Enqueue(e);
                return ValueTask.CompletedTask;
            }));
        });
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    public static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("condition not met");
            await Task.Delay(20);
        }
    }
}
