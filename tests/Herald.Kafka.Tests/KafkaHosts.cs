using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Herald.Kafka.Tests;

/// <summary>Real hosts with Herald on Kafka (the mock cluster).</summary>
public static class KafkaHosts
{
    public static async Task<IHost> StartAsync(string bootstrap, Action<HeraldBuilder> configure, Action<KafkaTransportOptions>? kafka = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        if (Environment.GetEnvironmentVariable("HERALD_TEST_LOG") == "1") builder.Logging.AddConsole().SetMinimumLevel(LogLevel.Debug);
        builder.Services.AddHerald(h =>
        {
            h.UseKafka(bootstrap, o =>
            {
                ForMockCluster(o);
                kafka?.Invoke(o);
            });
            configure(h);
        });
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    /// <summary>Settings for librdkafka's mock cluster: it has no CreateTopics, and it does not act
    /// on a member's LeaveGroup (the next member to join waits for the one gone to time out), so
    /// sessions are short.</summary>
    public static void ForMockCluster(KafkaTransportOptions o)
    {
        o.Linger = TimeSpan.FromMilliseconds(1);
        o.TopicCreation = TopicCreation.BrokerAutoCreate;
        o.Properties["session.timeout.ms"] = "6000";
        o.Properties["heartbeat.interval.ms"] = "500";
        if (Environment.GetEnvironmentVariable("HERALD_KAFKA_DEBUG") is { Length: > 0 } debug) o.Properties["debug"] = debug;
    }

    public static async Task StopAndDisposeAsync(this IHost host)
    {
        try
        {
            await host.StopAsync();
        }
        finally
        {
            if (host is IAsyncDisposable a) await a.DisposeAsync();
            else host.Dispose();
        }
    }

    public static async Task WaitUntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting for {what}");
            await Task.Delay(20);
        }
    }
}
