using Herald.Log;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Herald.Sqlite.Tests.Kit;

/// <summary>Real hosts with Herald on the embedded log and its store in a SQLite file.</summary>
public static class SqliteHosts
{
    public static async Task<IHost> StartAsync(string logDirectory, Action<HeraldBuilder> configure, Action<IServiceCollection>? services = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        if (Environment.GetEnvironmentVariable("HERALD_TEST_LOG") == "1") builder.Logging.AddConsole().SetMinimumLevel(LogLevel.Debug);
        builder.Services.AddHerald(h =>
        {
            // Acknowledged on write: these tests are about the store, not the log's fsync.
            h.UseEmbedded(logDirectory, o =>
            {
                o.DefaultTopic.Durability = DurabilityMode.AckOnWrite;
                o.MaintenanceInterval = null;
            });
            configure(h);
        });
        services?.Invoke(builder.Services);
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

    /// <summary>Waits for <paramref name="condition"/>, polling, failing after <paramref name="timeout"/>.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, TimeSpan? timeout = null, string? what = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting for {what ?? "the condition"}");
            await Task.Delay(10);
        }
    }

    /// <summary>Runs a scalar query on the database.</summary>
    public static async Task<long> ScalarAsync(string connectionString, string sql)
    {
        await using var connection = new SqliteConnection(connectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Runs a statement on the database.</summary>
    public static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new SqliteConnection(connectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }
}
