using System.Collections.Concurrent;
using Herald.Log;
using Herald.Sqlite.Tests.Kit;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace Herald.Sqlite.Tests;

public sealed record OrderPlaced(string OrderId, decimal Amount);

public sealed record OrderCharged(string OrderId, decimal Amount);

/// <summary>The inbox on SQLite: a handler's effects, the events it publishes and the id of the
/// event it handled commit in one transaction, so a redelivered event changes nothing.</summary>
public class InboxTests
{
    private const string Charges = "CREATE TABLE IF NOT EXISTS charges (order_id TEXT NOT NULL, amount TEXT NOT NULL)";

    /// <summary>billing charges each order (a row in its own database, through the handler's
    /// transaction) and publishes OrderCharged; ledger counts what billing published.</summary>
    private static Action<HeraldBuilder> Billing(string db, ConcurrentQueue<string> runs, ConcurrentQueue<string> charged, Func<OrderPlaced, int, bool>? failAttempt = null) => h =>
    {
        h.UseSqlite(db);
        h.Topic("orders", partitions: 2);
        h.Topic("payments", partitions: 2);
        h.Event<OrderPlaced>("orders", e => e.OrderId);
        h.Event<OrderCharged>("payments", e => e.OrderId);
        h.Subscribe("billing", s => s
            .UseInbox()
            .Configure(o =>
            {
                o.Retry.ImmediateRetries = 3;
                o.Retry.Backoff = TimeSpan.FromMilliseconds(1);
                o.CommitInterval = TimeSpan.FromMilliseconds(20);
            })
            .Handle<OrderPlaced>(async (e, ctx, ct) =>
            {
                runs.Enqueue(e.OrderId);
                await using (var insert = ctx.Connection!.CreateCommand())
                {
                    insert.Transaction = ctx.Transaction;
                    insert.CommandText = "INSERT INTO charges (order_id, amount) VALUES ($id, $amount)";
                    insert.Parameters.Add(new SqliteParameter("$id", e.OrderId));
                    insert.Parameters.Add(new SqliteParameter("$amount", e.Amount.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                    await insert.ExecuteNonQueryAsync(ct);
                }
                await ctx.PublishAsync(new OrderCharged(e.OrderId, e.Amount), cancellationToken: ct);
                if (failAttempt?.Invoke(e, ctx.Attempt) == true) throw new InvalidOperationException($"attempt {ctx.Attempt} of {e.OrderId} fails after its effects");
            }));
        h.Subscribe("ledger", s => s.Handle<OrderCharged>((e, ctx, ct) =>
        {
            charged.Enqueue(e.OrderId);
            return ValueTask.CompletedTask;
        }));
    };

    private static async Task PublishOrdersAsync(Microsoft.Extensions.Hosting.IHost host, int count)
    {
        var publisher = host.Services.GetRequiredService<IEventPublisher>();
        for (var i = 0; i < count; i++) await publisher.PublishAsync(new OrderPlaced($"o{i}", 10m + i));
    }

    [Fact]
    public async Task A_handler_commits_its_effects_its_events_and_its_inbox_entry_together()
    {
        using var dir = new TempDirectory("inbox-commit");
        var db = dir.Database();
        await SqliteHosts.ExecuteAsync(db, Charges);
        var runs = new ConcurrentQueue<string>();
        var charged = new ConcurrentQueue<string>();
        var host = await SqliteHosts.StartAsync(Path.Combine(dir.Path, "log"), Billing(db, runs, charged));
        await PublishOrdersAsync(host, 50);
        await SqliteHosts.WaitUntilAsync(() => charged.Count == 50, what: "50 charges published and handled");
        await host.StopAndDisposeAsync();

        Assert.Equal(50, await SqliteHosts.ScalarAsync(db, "SELECT COUNT(*) FROM charges"));
        Assert.Equal(50, await SqliteHosts.ScalarAsync(db, "SELECT COUNT(*) FROM herald_inbox WHERE grp = 'billing'"));
        Assert.Equal(50, charged.Distinct().Count());
    }

    [Fact]
    public async Task An_attempt_that_fails_after_its_effects_leaves_nothing_behind_and_its_retry_commits_once()
    {
        using var dir = new TempDirectory("inbox-rollback");
        var db = dir.Database();
        await SqliteHosts.ExecuteAsync(db, Charges);
        var runs = new ConcurrentQueue<string>();
        var charged = new ConcurrentQueue<string>();
        // The first two attempts of every third order throw after writing their charge and publishing.
        var host = await SqliteHosts.StartAsync(Path.Combine(dir.Path, "log"),
            Billing(db, runs, charged, (e, attempt) => int.Parse(e.OrderId[1..], System.Globalization.CultureInfo.InvariantCulture) % 3 == 0 && attempt <= 2));
        await PublishOrdersAsync(host, 30);
        await SqliteHosts.WaitUntilAsync(() => charged.Count == 30, what: "30 charges published and handled");
        await Task.Delay(300); // no stray charge from a failed attempt may follow
        await host.StopAndDisposeAsync();

        Assert.Equal(30 + 2 * 10, runs.Count);                       // every attempt ran
        Assert.Equal(30, await SqliteHosts.ScalarAsync(db, "SELECT COUNT(*) FROM charges")); // only the successful ones left effects
        Assert.Equal(30, charged.Count);                             // and events
        Assert.Equal(0, await SqliteHosts.ScalarAsync(db, "SELECT COUNT(*) FROM herald_outbox"));
    }

    [Fact]
    public async Task Events_delivered_again_are_acknowledged_without_running_the_handler_again()
    {
        using var dir = new TempDirectory("inbox-redelivery");
        var db = dir.Database();
        var logDir = Path.Combine(dir.Path, "log");
        await SqliteHosts.ExecuteAsync(db, Charges);
        var runs = new ConcurrentQueue<string>();
        var charged = new ConcurrentQueue<string>();
        var host = await SqliteHosts.StartAsync(logDir, Billing(db, runs, charged));
        await PublishOrdersAsync(host, 40);
        await SqliteHosts.WaitUntilAsync(() => charged.Count == 40, what: "40 charges");
        await host.StopAndDisposeAsync();

        // As after a crash between the handlers' commits and the offset commit: billing reads
        // everything again.
        await using (var log = EmbeddedLog.Open(logDir, new EmbeddedLogOptions { MaintenanceInterval = null }))
            for (var p = 0; p < 2; p++) await log.Offsets.CommitAsync("billing", "orders", p, 0);

        var rerun = new ConcurrentQueue<string>();
        var again = new ConcurrentQueue<string>();
        var restarted = await SqliteHosts.StartAsync(logDir, Billing(db, rerun, again));
        var transport = (Herald.Embedded.EmbeddedTransport)restarted.Services.GetRequiredService<Herald.Transport.ITransport>();
        await SqliteHosts.WaitUntilAsync(() => Enumerable.Range(0, 2).All(p =>
            transport.Log.Offsets.GetCommitted("billing", "orders", p) == transport.GetOffsets("orders", p).End), what: "billing caught up again");
        await Task.Delay(300);
        await restarted.StopAndDisposeAsync();

        Assert.Empty(rerun);                                          // no handler ran again
        Assert.Empty(again);                                          // nothing was published again
        Assert.Equal(40, await SqliteHosts.ScalarAsync(db, "SELECT COUNT(*) FROM charges"));
    }

    [Fact]
    public async Task The_inbox_is_purged_by_age_and_by_count()
    {
        using var dir = new TempDirectory("inbox-purge");
        var db = dir.Database();
        var store = new SqliteStore(db);
        await store.InitializeAsync();
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await using (var connection = await store.OpenConnectionAsync())
        {
            await using var tx = await connection.BeginTransactionAsync();
            for (var i = 0; i < 300; i++) Assert.True(await store.TryRecordAsync(tx, "g", $"old-{i}", now - 10_000 - i));
            for (var i = 0; i < 300; i++) Assert.True(await store.TryRecordAsync(tx, "g", $"new-{i}", now + i));
            Assert.False(await store.TryRecordAsync(tx, "g", "new-0", now)); // already there
            Assert.True(await store.TryRecordAsync(tx, "other", "new-0", now)); // another group's
            await tx.CommitAsync();
        }
        // Older than 5 s: the 300 old ones, at most 128 a call.
        Assert.Equal(128, await store.PurgeAsync(now - 5_000, keep: 1000, maxRows: 128));
        Assert.Equal(128, await store.PurgeAsync(now - 5_000, keep: 1000, maxRows: 128));
        Assert.Equal(44, await store.PurgeAsync(now - 5_000, keep: 1000, maxRows: 128));
        // Beyond the newest 100: the oldest 201 of the 301 left.
        Assert.Equal(201, await store.PurgeAsync(now - 5_000, keep: 100, maxRows: 1000));
        Assert.Equal(100, await SqliteHosts.ScalarAsync(db, "SELECT COUNT(*) FROM herald_inbox"));
        Assert.Equal(100, await SqliteHosts.ScalarAsync(db, "SELECT COUNT(*) FROM herald_inbox WHERE handled_ms >= " + (now + 200)));
    }

    [Fact]
    public async Task A_subscription_with_the_inbox_and_no_store_fails_at_start_naming_it()
    {
        using var dir = new TempDirectory("inbox-no-store");
        var error = await Assert.ThrowsAsync<ArgumentException>(() => SqliteHosts.StartAsync(Path.Combine(dir.Path, "log"), h =>
        {
            h.Event<OrderPlaced>("orders", e => e.OrderId);
            h.Subscribe("billing", s => s.UseInbox().Handle<OrderPlaced>((e, ctx, ct) => ValueTask.CompletedTask));
        }));
        Assert.Contains("'billing'", error.Message);
        Assert.Contains("UseSqlite", error.Message);
    }
}
