using Herald.Log;
using Herald.Sqlite;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Herald.EntityFrameworkCore.Tests.Kit;

/// <summary>Real hosts with Herald on the embedded log, its store in a SQLite file, and the
/// service's <see cref="ShopDb"/> (with Herald's interceptor) on the same file.</summary>
public static class EfHosts
{
    public static async Task<IHost> StartAsync(string logDirectory, string db, Action<HeraldBuilder> configure, Action<Herald.Outbox.OutboxOptions>? outbox = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        if (Environment.GetEnvironmentVariable("HERALD_TEST_LOG") == "1") builder.Logging.AddConsole().SetMinimumLevel(LogLevel.Debug);
        builder.Services.AddDbContext<ShopDb>(o => o.UseSqlite(db).UseHeraldOutbox());
        builder.Services.AddHerald(h =>
        {
            // Acknowledged on write: these tests are about the database, not the log's fsync.
            h.UseEmbedded(logDirectory, o =>
            {
                o.DefaultTopic.Durability = DurabilityMode.AckOnWrite;
                o.MaintenanceInterval = null;
            });
            h.UseSqlite(db, outbox);
            configure(h);
        });
        var host = builder.Build();
        await host.StartAsync();
        // The relay creates Herald's tables in the background after the start. A transaction begun
        // before that holds SQLite's write lock while the store's first write migrates on a
        // connection of its own, which then waits for that lock until it times out: make sure the
        // tables are there before a test begins one (an application has the same race; see the report).
        await host.Services.GetRequiredService<Herald.Outbox.IOutboxStore>().InitializeAsync();
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
}
