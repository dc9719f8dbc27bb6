using System.Collections.Concurrent;
using Herald.EntityFrameworkCore.Tests.Kit;
using Herald.Log;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Herald.EntityFrameworkCore.Tests;

public sealed record PaymentDue(string OrderId, long AmountCents);

public sealed record OrderCharged(string OrderId, long AmountCents);

/// <summary>Inbox handlers with a DbContext: the context's changes, the events the handler publishes
/// and the inbox entry of the event it handled commit in Herald's transaction, so a failed attempt
/// leaves nothing and a redelivered event changes nothing.</summary>
public class InboxTests
{
    /// <summary>billing charges each order through its DbContext, joined to the handler's
    /// transaction, and publishes OrderCharged; ledger counts what billing published.</summary>
    private static Action<HeraldBuilder> Billing(ConcurrentQueue<string> runs, ConcurrentQueue<string> charged, Func<PaymentDue, int, bool>? failAttempt = null) => h =>
    {
        h.Topic("payments-due", partitions: 2);
        h.Topic("charges", partitions: 2);
        h.Event<PaymentDue>("payments-due", e => e.OrderId);
        h.Event<OrderCharged>("charges", e => e.OrderId);
        h.Subscribe("billing", s => s
            .UseInbox()
            .Configure(o =>
            {
                o.Retry.ImmediateRetries = 3;
                o.Retry.Backoff = TimeSpan.FromMilliseconds(1);
                o.CommitInterval = TimeSpan.FromMilliseconds(20);
            })
            .Handle<PaymentDue>(async (e, ctx, ct) =>
            {
                runs.Enqueue(e.OrderId);
                var db = ctx.Services.GetRequiredService<ShopDb>();
                await db.UseHandlerTransactionAsync(ctx, ct);
                db.Charges.Add(new Charge { OrderId = e.OrderId, AmountCents = e.AmountCents });
                await db.SaveChangesAsync(ct);
                await ctx.PublishAsync(new OrderCharged(e.OrderId, e.AmountCents), cancellationToken: ct);
                if (failAttempt?.Invoke(e, ctx.Attempt) == true) throw new InvalidOperationException($"attempt {ctx.Attempt} of {e.OrderId} fails after SaveChanges");
            }));
        h.Subscribe("ledger", s => s.Handle<OrderCharged>((e, ctx, ct) =>
        {
            charged.Enqueue(e.OrderId);
            return ValueTask.CompletedTask;
        }));
    };

    private static async Task PublishAsync(IHost host, int count)
    {
        var publisher = host.Services.GetRequiredService<IEventPublisher>();
        for (var i = 0; i < count; i++) await publisher.PublishAsync(new PaymentDue($"o{i}", 1000 + i));
    }

    [Fact]
    public async Task A_handler_s_DbContext_changes_commit_with_its_events_and_its_inbox_entry()
    {
        using var dir = new TempDirectory("ef-inbox-commit");
        var db = dir.Database();
        await ShopDb.CreateAsync(db);
        var runs = new ConcurrentQueue<string>();
        var charged = new ConcurrentQueue<string>();
        var host = await EfHosts.StartAsync(Path.Combine(dir.Path, "log"), db, Billing(runs, charged));
        await PublishAsync(host, 50);
        await EfHosts.WaitUntilAsync(() => charged.Count == 50, what: "50 charges published and handled");
        await host.StopAndDisposeAsync();

        Assert.Equal(50, runs.Count);
        Assert.Equal(50, await EfHosts.ScalarAsync(db, "SELECT COUNT(*) FROM Charges"));
        Assert.Equal(50, await EfHosts.ScalarAsync(db, "SELECT COUNT(DISTINCT OrderId) FROM Charges"));
        Assert.Equal(50 * 1000 + 49 * 50 / 2, await EfHosts.ScalarAsync(db, "SELECT SUM(AmountCents) FROM Charges"));
        Assert.Equal(50, await EfHosts.ScalarAsync(db, "SELECT COUNT(*) FROM herald_inbox WHERE grp = 'billing'"));
        Assert.Equal(50, charged.Distinct().Count());
    }

    [Fact]
    public async Task A_handler_that_throws_after_SaveChanges_leaves_nothing_and_its_retry_commits_once()
    {
        using var dir = new TempDirectory("ef-inbox-rollback");
        var db = dir.Database();
        await ShopDb.CreateAsync(db);
        var runs = new ConcurrentQueue<string>();
        var charged = new ConcurrentQueue<string>();
        // The first two attempts of every third order throw after saving their charge and publishing.
        var host = await EfHosts.StartAsync(Path.Combine(dir.Path, "log"), db,
            Billing(runs, charged, (e, attempt) => int.Parse(e.OrderId[1..], System.Globalization.CultureInfo.InvariantCulture) % 3 == 0 && attempt <= 2));
        await PublishAsync(host, 30);
        await EfHosts.WaitUntilAsync(() => charged.Count == 30, what: "30 charges published and handled");
        await Task.Delay(300); // no stray charge from a failed attempt may follow
        await host.StopAndDisposeAsync();

        Assert.Equal(30 + 2 * 10, runs.Count);                                           // every attempt ran
        Assert.Equal(30, await EfHosts.ScalarAsync(db, "SELECT COUNT(*) FROM Charges"));  // only the successful ones saved
        Assert.Equal(30, await EfHosts.ScalarAsync(db, "SELECT COUNT(DISTINCT OrderId) FROM Charges"));
        Assert.Equal(30, charged.Count);                                                 // and published
        Assert.Equal(30, await EfHosts.ScalarAsync(db, "SELECT COUNT(*) FROM herald_inbox WHERE grp = 'billing'"));
        Assert.Equal(0, await EfHosts.ScalarAsync(db, "SELECT COUNT(*) FROM herald_outbox"));
    }

    [Fact]
    public async Task A_redelivered_event_changes_nothing()
    {
        using var dir = new TempDirectory("ef-inbox-redelivery");
        var db = dir.Database();
        var logDir = Path.Combine(dir.Path, "log");
        await ShopDb.CreateAsync(db);
        var runs = new ConcurrentQueue<string>();
        var charged = new ConcurrentQueue<string>();
        var host = await EfHosts.StartAsync(logDir, db, Billing(runs, charged));
        await PublishAsync(host, 40);
        await EfHosts.WaitUntilAsync(() => charged.Count == 40, what: "40 charges");
        await host.StopAndDisposeAsync();

        // As after a crash between the handlers' commits and the offset commit: billing reads
        // everything again.
        await using (var log = EmbeddedLog.Open(logDir, new EmbeddedLogOptions { MaintenanceInterval = null }))
            for (var p = 0; p < 2; p++) await log.Offsets.CommitAsync("billing", "payments-due", p, 0);

        var rerun = new ConcurrentQueue<string>();
        var again = new ConcurrentQueue<string>();
        var restarted = await EfHosts.StartAsync(logDir, db, Billing(rerun, again));
        var transport = (Herald.Embedded.EmbeddedTransport)restarted.Services.GetRequiredService<Herald.Transport.ITransport>();
        await EfHosts.WaitUntilAsync(() => Enumerable.Range(0, 2).All(p =>
            transport.Log.Offsets.GetCommitted("billing", "payments-due", p) == transport.GetOffsets("payments-due", p).End), what: "billing caught up again");
        await Task.Delay(300);
        await restarted.StopAndDisposeAsync();

        Assert.Empty(rerun);  // no handler ran again
        Assert.Empty(again);  // nothing was published again
        Assert.Equal(40, await EfHosts.ScalarAsync(db, "SELECT COUNT(*) FROM Charges"));
        Assert.Equal(40, await EfHosts.ScalarAsync(db, "SELECT COUNT(*) FROM herald_inbox WHERE grp = 'billing'"));
    }

    [Fact]
    public async Task A_DbContext_built_on_the_handler_s_connection_joins_its_transaction_with_EF_s_SQLite_functions()
    {
        using var dir = new TempDirectory("ef-inbox-own-options");
        var db = dir.Database();
        await ShopDb.CreateAsync(db);
        var failures = new ConcurrentQueue<Exception>();
        var handled = new ConcurrentQueue<string>();
        var host = await EfHosts.StartAsync(Path.Combine(dir.Path, "log"), db, h =>
        {
            h.Topic("payments-due", partitions: 2);
            h.Event<PaymentDue>("payments-due", e => e.OrderId);
            h.Subscribe("billing", s => s.UseInbox().Handle<PaymentDue>(async (e, ctx, ct) =>
            {
                try
                {
                    // EF's SQLite provider registers its functions on a connection given in the options.
                    var options = new DbContextOptionsBuilder<ShopDb>().UseSqlite(ctx.Connection!).UseHeraldOutbox().Options;
                    await using var shop = new ShopDb(options);
                    await shop.UseHandlerTransactionAsync(ctx, ct);
                    var big = await shop.Charges.CountAsync(c => c.Amount > 10.5m, ct); // ef_compare
                    shop.Charges.Add(new Charge { OrderId = e.OrderId, AmountCents = e.AmountCents, Amount = e.AmountCents / 100m });
                    await shop.SaveChangesAsync(ct);
                    handled.Enqueue(e.OrderId);
                }
                catch (Exception error)
                {
                    failures.Enqueue(error);
                    throw;
                }
            }));
        });
        await PublishAsync(host, 10);
        await EfHosts.WaitUntilAsync(() => handled.Count + failures.Count >= 10, what: "10 events handled");
        await host.StopAndDisposeAsync();

        Assert.Empty(failures);
        Assert.Equal(10, await EfHosts.ScalarAsync(db, "SELECT COUNT(*) FROM Charges"));
        Assert.Equal(10, await EfHosts.ScalarAsync(db, "SELECT COUNT(*) FROM herald_inbox WHERE grp = 'billing'"));
    }

    /// <summary>Runs <paramref name="handle"/> as the handler of one event in a subscription (with the
    /// inbox or not) and returns what it threw on its only attempt.</summary>
    private static async Task<Exception?> FirstAttemptAsync(bool inbox, Func<EventContext, CancellationToken, Task> handle)
    {
        using var dir = new TempDirectory("ef-inbox-misuse");
        var db = dir.Database();
        await ShopDb.CreateAsync(db);
        var outcome = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var host = await EfHosts.StartAsync(Path.Combine(dir.Path, "log"), db, h =>
        {
            h.Event<PaymentDue>("payments-due", e => e.OrderId);
            h.Subscribe("billing", s =>
            {
                if (inbox) s.UseInbox();
                s.Configure(o => o.Retry.ImmediateRetries = 0);
                s.Handle<PaymentDue>(async (e, ctx, ct) =>
                {
                    try
                    {
                        await handle(ctx, ct);
                        outcome.TrySetResult(null);
                    }
                    catch (Exception error)
                    {
                        outcome.TrySetResult(error);
                        throw;
                    }
                });
            });
        });
        await host.Services.GetRequiredService<IEventPublisher>().PublishAsync(new PaymentDue("o1", 1));
        var result = await outcome.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await host.StopAndDisposeAsync();
        Assert.Equal(0, await EfHosts.ScalarAsync(db, "SELECT COUNT(*) FROM Charges"));
        return result;
    }

    [Fact]
    public async Task Joining_the_handler_s_transaction_outside_an_inbox_subscription_is_refused_naming_UseInbox()
    {
        var error = await FirstAttemptAsync(inbox: false, async (ctx, ct) =>
        {
            var db = ctx.Services.GetRequiredService<ShopDb>();
            await db.UseHandlerTransactionAsync(ctx, ct);
            db.Charges.Add(new Charge { OrderId = "o1", AmountCents = 1 });
            await db.SaveChangesAsync(ct);
        });
        var refused = Assert.IsType<InvalidOperationException>(error);
        Assert.Contains("subscription 'billing' has no transaction", refused.Message);
        Assert.Contains("does not use the inbox", refused.Message);
        Assert.Contains("UseInbox()", refused.Message);
    }

    [Fact]
    public async Task A_DbContext_that_served_another_event_is_refused()
    {
        using var dir = new TempDirectory("ef-inbox-shared");
        var db = dir.Database();
        await ShopDb.CreateAsync(db);
        // One context for every event, as a singleton would be: the second event must not write
        // through the first one's ended transaction.
        ShopDb? shared = null;
        var outcomes = new ConcurrentQueue<Exception?>();
        var host = await EfHosts.StartAsync(Path.Combine(dir.Path, "log"), db, h =>
        {
            h.Event<PaymentDue>("payments-due", e => e.OrderId);
            h.Subscribe("billing", s => s.UseInbox().Configure(o => o.Retry.ImmediateRetries = 0).Handle<PaymentDue>(async (e, ctx, ct) =>
            {
                shared ??= new ShopDb(ctx.Services.GetRequiredService<DbContextOptions<ShopDb>>());
                try
                {
                    await shared.UseHandlerTransactionAsync(ctx, ct);
                    await shared.UseHandlerTransactionAsync(ctx, ct); // again in the same attempt: nothing happens
                    shared.Charges.Add(new Charge { OrderId = e.OrderId, AmountCents = e.AmountCents });
                    await shared.SaveChangesAsync(ct);
                    outcomes.Enqueue(null);
                }
                catch (Exception error)
                {
                    outcomes.Enqueue(error);
                    throw;
                }
            }));
        });
        var publisher = host.Services.GetRequiredService<IEventPublisher>();
        await publisher.PublishAsync(new PaymentDue("first", 1));
        await EfHosts.WaitUntilAsync(() => outcomes.Count == 1, what: "the first event handled");
        await publisher.PublishAsync(new PaymentDue("second", 2));
        await EfHosts.WaitUntilAsync(() => outcomes.Count == 2, what: "the second event's attempt");
        await host.StopAndDisposeAsync();
        await shared!.DisposeAsync();

        var all = outcomes.ToArray();
        Assert.Null(all[0]);
        var refused = Assert.IsType<InvalidOperationException>(all[1]);
        Assert.Contains("ShopDb is in another transaction", refused.Message);
        Assert.Contains("HandlerScope.PerEvent", refused.Message);
        Assert.Equal(1, await EfHosts.ScalarAsync(db, "SELECT COUNT(*) FROM Charges WHERE OrderId = 'first'"));
        Assert.Equal(1, await EfHosts.ScalarAsync(db, "SELECT COUNT(*) FROM Charges"));
    }

    [Fact]
    public async Task A_DbContext_with_a_connection_of_its_own_open_is_refused()
    {
        var error = await FirstAttemptAsync(inbox: true, async (ctx, ct) =>
        {
            var db = ctx.Services.GetRequiredService<ShopDb>();
            await db.Database.OpenConnectionAsync(ct);
            await db.UseHandlerTransactionAsync(ctx, ct);
        });
        var refused = Assert.IsType<InvalidOperationException>(error);
        Assert.Contains("has a connection of its own open", refused.Message);
    }

    [Fact]
    public async Task A_DbContext_whose_execution_strategy_retries_is_refused()
    {
        var error = await FirstAttemptAsync(inbox: true, async (ctx, ct) =>
        {
            var options = new DbContextOptionsBuilder<ShopDb>()
                .UseSqlite(ctx.Connection!.ConnectionString, s => s.ExecutionStrategy(d => new RetryingStrategy(d)))
                .Options;
            await using var db = new ShopDb(options);
            await db.UseHandlerTransactionAsync(ctx, ct);
        });
        var refused = Assert.IsType<InvalidOperationException>(error);
        Assert.Contains("execution strategy that retries", refused.Message);
    }

    [Fact]
    public async Task Committing_the_handler_s_transaction_through_the_DbContext_is_refused()
    {
        var error = await FirstAttemptAsync(inbox: true, async (ctx, ct) =>
        {
            var db = ctx.Services.GetRequiredService<ShopDb>(); // has Herald's interceptor
            await db.UseHandlerTransactionAsync(ctx, ct);
            db.Charges.Add(new Charge { OrderId = "o1", AmountCents = 1 });
            await db.SaveChangesAsync(ct);
            await db.Database.CommitTransactionAsync(ct);
        });
        var refused = Assert.IsType<InvalidOperationException>(error);
        Assert.Contains("tried to commit the transaction of subscription 'billing''s handler", refused.Message);
        // and the charge it saved was rolled back with the failed attempt (checked by FirstAttemptAsync)
    }

    /// <summary>A strategy that retries on any failure, as EnableRetryOnFailure does on transient ones.</summary>
    private sealed class RetryingStrategy(ExecutionStrategyDependencies dependencies)
        : ExecutionStrategy(dependencies, maxRetryCount: 3, maxRetryDelay: TimeSpan.FromMilliseconds(10))
    {
        protected override bool ShouldRetryOn(Exception exception) => true;
    }
}
