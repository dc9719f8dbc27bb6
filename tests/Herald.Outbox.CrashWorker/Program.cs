// The child process of the outbox and inbox fault tests (tests/Shared/OutboxCrashScenario.cs).
// usage: Herald.Outbox.CrashWorker <sqlite|postgres> <connection string> <schema or -> <log dir> <mode> <events>
// One host on the embedded log in <log dir> with Herald's store in the database: a producer writes
// <events> events through the outbox, ten to a transaction, each beside a row in "produced"; a
// subscription with the inbox handles them, each inserting a row into "effects" (no unique key:
// a handler that ran twice would leave two) and printing "handled <seq>". "ready" is printed once
// the tables exist and the host has started.
// Modes:
//   relay-crash    the relay's first round publishes, then stops before removing what it
//                  published: "published <n>" is printed and the process waits to be killed.
//   handler-crash  the relay runs; offsets are committed only every 5 minutes, so the handlers'
//                  effects commit and their offsets do not before the test kills the process.
//   resume         produces nothing; relays and handles what is left, prints "idle" once the
//                  outbox is empty and the group has caught up, stops cleanly and exits 0.
using System.Globalization;
using Herald;
using Herald.Embedded;
using Herald.Log;
using Herald.Outbox;
using Herald.PostgreSql;
using Herald.Sqlite;
using Herald.Transport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

if (args.Length != 6 || args[0] is not ("sqlite" or "postgres") || args[4] is not ("relay-crash" or "handler-crash" or "resume")
    || !int.TryParse(args[5], NumberStyles.None, CultureInfo.InvariantCulture, out var events))
{
    await Console.Error.WriteLineAsync("usage: Herald.Outbox.CrashWorker <sqlite|postgres> <connection string> <schema or -> <log dir> <relay-crash|handler-crash|resume> <events>");
    return 2;
}
var (storeKind, connectionString, schema, logDirectory, mode) = (args[0], args[1], args[2], args[3], args[4]);
try
{
    return await RunAsync();
}
catch (Exception e)
{
    await Console.Error.WriteLineAsync($"outbox crash worker ({mode}) failed: {e}");
    return 1;
}

async Task<int> RunAsync()
{
    var output = Console.Out;
    var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
    builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace).SetMinimumLevel(LogLevel.Warning);
    var published = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    builder.Services.AddHerald(h =>
    {
        h.UseEmbedded(logDirectory, o => o.MaintenanceInterval = null);
        void Outbox(OutboxOptions o)
        {
            o.BatchSize = 50;
            if (mode != "relay-crash") return;
            o.AfterPublish = async (ids, ct) =>
            {
                // Durable on the log, still in the outbox: the test kills the process now.
                lock (output) output.WriteLine($"published {ids.Count}");
                published.TrySetResult();
                await Task.Delay(Timeout.Infinite, ct);
            };
        }
        if (storeKind == "sqlite") h.UseSqlite(connectionString, Outbox);
        else h.UsePostgres(connectionString, Outbox, schema: schema);
        h.Topic("work", partitions: 3);
        h.Event<Work>("work", w => w.Key);
        h.Subscribe("effects", s => s
            .UseInbox()
            .Configure(o => o.CommitInterval = mode == "handler-crash" ? TimeSpan.FromMinutes(5) : TimeSpan.FromMilliseconds(50))
            .Handle<Work>(async (w, ctx, ct) =>
            {
                await using (var insert = ctx.Connection!.CreateCommand())
                {
                    insert.Transaction = ctx.Transaction;
                    insert.CommandText = "INSERT INTO effects (seq, pid) VALUES (@seq, @pid)";
                    Add(insert, "@seq", (long)w.Seq);
                    Add(insert, "@pid", (long)Environment.ProcessId);
                    await insert.ExecuteNonQueryAsync(ct);
                }
                lock (output) output.WriteLine($"handled {w.Seq}");
            }));
    });
    using var host = builder.Build();
    var outbox = host.Services.GetRequiredService<TransactionalOutbox>();
    await CreateTablesAsync(outbox.Store);
    await host.StartAsync();
    lock (output) output.WriteLine("ready");

    if (mode != "resume")
    {
        for (var first = 0; first < events; first += 10)
        {
            await using var tx = await outbox.BeginAsync();
            for (var seq = first; seq < Math.Min(first + 10, events); seq++)
            {
                await using (var insert = tx.CreateCommand("INSERT INTO produced (seq) VALUES (@seq)")) { Add(insert, "@seq", (long)seq); await insert.ExecuteNonQueryAsync(); }
                await tx.PublishAsync(new Work($"k{seq % 7}", seq));
            }
            await tx.CommitAsync();
        }
        lock (output) output.WriteLine("produced");
        await Task.Delay(Timeout.Infinite); // killed by the test
        return 0;
    }

    // resume: wait until the outbox is empty and the group has handled everything in the topic.
    var transport = (EmbeddedTransport)host.Services.GetRequiredService<ITransport>();
    var deadline = DateTime.UtcNow.AddSeconds(60);
    while (true)
    {
        var pending = (await outbox.Store.StatsAsync(int.MaxValue)).Pending;
        var caughtUp = Enumerable.Range(0, 3).All(p => transport.Log.Offsets.GetCommitted("effects", "work", p) == transport.GetOffsets("work", p).End);
        if (pending == 0 && caughtUp) break;
        if (DateTime.UtcNow > deadline) throw new TimeoutException($"not caught up after 60 s: {pending} events in the outbox");
        await Task.Delay(50);
    }
    lock (output) output.WriteLine("idle");
    await host.StopAsync();
    return 0;
}

static void Add(System.Data.Common.DbCommand command, string name, object value)
{
    var p = command.CreateParameter();
    p.ParameterName = name;
    p.Value = value;
    command.Parameters.Add(p);
}

static async Task CreateTablesAsync(IOutboxStore store)
{
    await using var connection = await store.OpenConnectionAsync();
    await using var command = connection.CreateCommand();
    command.CommandText = "CREATE TABLE IF NOT EXISTS produced (seq BIGINT NOT NULL); CREATE TABLE IF NOT EXISTS effects (seq BIGINT NOT NULL, pid BIGINT NOT NULL);";
    await command.ExecuteNonQueryAsync();
}

internal sealed record Work(string Key, int Seq);
