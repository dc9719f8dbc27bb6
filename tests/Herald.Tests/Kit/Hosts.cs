using Herald.Log;
using Microsoft.Extensions.Hosting;

namespace Herald.Tests.Kit;

public static class Hosts
{
    /// <summary>Log options for tests where durability is not under test: appends are acknowledged
    /// on write (no fsync per publish) and no maintenance runs.</summary>
    public static EmbeddedLogOptions FastLog() => new()
    {
        DefaultTopic = new TopicOptions { Durability = DurabilityMode.AckOnWrite },
        MaintenanceInterval = null,
    };

    /// <summary>The same settings, for <see cref="HeraldBuilder.UseEmbedded"/>.</summary>
    public static void Fast(EmbeddedLogOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        o.DefaultTopic.Durability = DurabilityMode.AckOnWrite;
        o.MaintenanceInterval = null;
    }

    /// <summary>Stops the host gracefully, then disposes it asynchronously (the transport is async-disposable only).</summary>
    public static async Task StopAndDisposeAsync(this IHost host)
    {
        ArgumentNullException.ThrowIfNull(host);
        try
        {
            await host.StopAsync();
        }
        finally
        {
            await host.DisposeHostAsync();
        }
    }

    /// <summary>Disposes a host that was stopped already, or that a failed test left running (its
    /// subscriptions then stop without draining).</summary>
    public static async Task DisposeHostAsync(this IHost host)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (host is IAsyncDisposable a) await a.DisposeAsync();
        else host.Dispose();
    }
}
