using Herald.Embedded;
using Herald.Log;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Herald.PostgreSql.Tests.Kit;

/// <summary>Real hosts with Herald's store in PostgreSQL, sharing one embedded log as the processes
/// of a service share a broker.</summary>
public static class PgHosts
{
    public static EmbeddedLog OpenLog(string directory) =>
        EmbeddedLog.Open(directory, new EmbeddedLogOptions { MaintenanceInterval = null, DefaultTopic = { Durability = DurabilityMode.AckOnWrite } });

    public static async Task<IHost> StartAsync(EmbeddedLog log, Action<HeraldBuilder> configure)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        if (Environment.GetEnvironmentVariable("HERALD_TEST_LOG") == "1") builder.Logging.AddConsole().SetMinimumLevel(LogLevel.Debug);
        builder.Services.AddHerald(h =>
        {
            h.UseTransport(_ => new EmbeddedTransport(log, ownsLog: false));
            configure(h);
        });
        var host = builder.Build();
        await host.StartAsync();
        return host;
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
}

/// <summary>A fresh directory under the system temp folder, deleted on dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory(string name)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "herald-postgres-tests", name + "-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}
