using System.Collections.Concurrent;
using Herald.EntityFrameworkCore.Tests.Kit;
using Herald.Outbox;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Herald.EntityFrameworkCore.Tests;

public sealed record OrderPlaced(string OrderId, string Key, int Seq);

/// <summary>The outbox with a DbContext, end to end: an EF transaction saves its changes and writes
/// its events, the relay publishes what committed to the embedded log, a subscriber gets it.</summary>
public class OutboxTests
{
    private static Action<HeraldBuilder> Orders(ConcurrentQueue<(OrderPlaced Event, string Id)> seen) => h =>
    {
        h.Topic("orders", partitions: 3);
        h.Event<OrderPlaced>("orders", e => e.Key);
        h.Subscribe("audit", s => s.Handle<OrderPlaced>((e, ctx, ct) =>
        {
            seen.Enqueue((e, ctx.Envelope.Id));
            return ValueTask.CompletedTask;
        }));
    };

    /// <summary>One order saved and its event published in one EF transaction, committed or not.</summary>
    private static async Task PlaceAsync(IHost host, OrderPlaced order, bool commit)
    {
        using var scope = host.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<ShopDb>();
        var outbox = scope.ServiceProvider.GetRequiredService<TransactionalOutbox>();
        await using var tx = await db.Database.BeginTransactionAsync();
        db.Orders.Add(new Order { Id = order.OrderId, Key = order.Key, AmountCents = order.Seq });
        await db.SaveChangesAsync();
        await outbox.PublishAsync(db, order);
        if (commit) await tx.CommitAsync();
        else await tx.RollbackAsync();
    }

    [Fact]
    public async Task A_committed_EF_transaction_publishes_its_events_once_in_order_per_key_with_its_changes_saved()
    {
        using var dir = new TempDirectory("ef-outbox-commit");
        var db = dir.Database();
        await ShopDb.CreateAsync(db);
        var seen = new ConcurrentQueue<(OrderPlaced Event, string Id)>();
        var host = await EfHosts.StartAsync(Path.Combine(dir.Path, "log"), db, Orders(seen));
        var outbox = host.Services.GetRequiredService<TransactionalOutbox>();
        var expected = new List<OrderPlaced>();
        for (var t = 0; t < 40; t++)
        {
            using var scope = host.Services.CreateScope();
            var shop = scope.ServiceProvider.GetRequiredService<ShopDb>();
            await using var tx = await shop.Database.BeginTransactionAsync();
            var events = Enumerable.Range(0, 3).Select(i => new OrderPlaced($"o{t}-{i}", $"k{(t + i) % 4}", t * 3 + i)).ToList();
            foreach (var e in events) shop.Orders.Add(new Order { Id = e.OrderId, Key = e.Key, AmountCents = e.Seq });
            await shop.SaveChangesAsync();
            foreach (var e in events) await outbox.PublishAsync(shop, e);
            await tx.CommitAsync();
            expected.AddRange(events);
        }
        await EfHosts.WaitUntilAsync(() => seen.Count >= expected.Count, what: $"{expected.Count} events relayed and handled");
        await EfHosts.WaitUntilAsync(() => EfHosts.ScalarAsync(db, "SELECT COUNT(*) FROM herald_outbox").Result == 0, what: "the outbox emptied");
        await Task.Delay(200); // nothing more may come
        await host.StopAndDisposeAsync();

        Assert.Equal(expected.Count, seen.Count);
        Assert.Equal(expected.Count, seen.Select(s => s.Id).Distinct().Count());
        foreach (var key in expected.Select(e => e.Key).Distinct())
            Assert.Equal(expected.Where(e => e.Key == key).Select(e => e.Seq), seen.Where(s => s.Event.Key == key).Select(s => s.Event.Seq));
        Assert.Equal(expected.Count, await EfHosts.ScalarAsync(db, "SELECT COUNT(*) FROM Orders"));
    }

    [Fact]
    public async Task A_rolled_back_EF_transaction_publishes_nothing_and_saves_nothing()
    {
        using var dir = new TempDirectory("ef-outbox-rollback");
        var db = dir.Database();
        await ShopDb.CreateAsync(db);
        var seen = new ConcurrentQueue<(OrderPlaced Event, string Id)>();
        var host = await EfHosts.StartAsync(Path.Combine(dir.Path, "log"), db, Orders(seen));
        await PlaceAsync(host, new OrderPlaced("rolled-back", "a", 0), commit: false);
        using (var scope = host.Services.CreateScope())
        {
            // Disposed without a commit: rolled back too.
            var shop = scope.ServiceProvider.GetRequiredService<ShopDb>();
            await using var tx = await shop.Database.BeginTransactionAsync();
            shop.Orders.Add(new Order { Id = "abandoned", Key = "a", AmountCents = 1 });
            await shop.SaveChangesAsync();
            await scope.ServiceProvider.GetRequiredService<TransactionalOutbox>().PublishAsync(shop, new OrderPlaced("abandoned", "a", 1));
        }
        // Written after both: once it is relayed, anything before it would have been too.
        await PlaceAsync(host, new OrderPlaced("committed", "a", 2), commit: true);
        await EfHosts.WaitUntilAsync(() => seen.Any(s => s.Event.OrderId == "committed"), what: "the committed order's event");
        await Task.Delay(200);
        await host.StopAndDisposeAsync();

        Assert.Equal(["committed"], seen.Select(s => s.Event.OrderId));
        Assert.Equal(1, await EfHosts.ScalarAsync(db, "SELECT COUNT(*) FROM Orders"));
        Assert.Equal(1, await EfHosts.ScalarAsync(db, "SELECT COUNT(*) FROM Orders WHERE Id = 'committed'"));
        Assert.Equal(0, await EfHosts.ScalarAsync(db, "SELECT COUNT(*) FROM herald_outbox"));
    }

    [Fact]
    public async Task The_interceptor_wakes_the_relay_on_commit_long_before_its_poll()
    {
        using var dir = new TempDirectory("ef-outbox-wake");
        var db = dir.Database();
        await ShopDb.CreateAsync(db);
        var seen = new ConcurrentQueue<(OrderPlaced Event, string Id)>();
        // The relay looks by itself only every 5 minutes, eagerly or not: only a wake brings it sooner.
        var host = await EfHosts.StartAsync(Path.Combine(dir.Path, "log"), db, Orders(seen), o =>
        {
            o.PollInterval = TimeSpan.FromMinutes(5);
            o.EagerPollInterval = TimeSpan.FromMinutes(5);
        });
        var outbox = host.Services.GetRequiredService<TransactionalOutbox>();
        // The relay has made its first round; one more after a wake, and it waits for the next wake or its poll.
        await Task.Delay(500);
        await PlaceAsync(host, new OrderPlaced("first", "a", 0), commit: true);
        await EfHosts.WaitUntilAsync(() => seen.Count == 1, TimeSpan.FromSeconds(10), "the first event relayed after its commit");
        await Task.Delay(300);

        // Without the interceptor the commit goes unheard: the event waits for the poll.
        await using (var plain = new ShopDb(ShopDb.Options(db, heraldOutbox: false)))
        {
            await using var tx = await plain.Database.BeginTransactionAsync();
            plain.Orders.Add(new Order { Id = "unheard", Key = "b", AmountCents = 1 });
            await plain.SaveChangesAsync();
            await outbox.PublishAsync(plain, new OrderPlaced("unheard", "b", 1));
            await tx.CommitAsync();
        }
        await Task.Delay(1000);
        Assert.DoesNotContain(seen, s => s.Event.OrderId == "unheard");

        // With it, the commit wakes the relay, which takes the unheard one along.
        var started = DateTime.UtcNow;
        await PlaceAsync(host, new OrderPlaced("heard", "a", 2), commit: true);
        await EfHosts.WaitUntilAsync(() => seen.Count == 3, TimeSpan.FromSeconds(10), "the second commit's event relayed");
        var took = DateTime.UtcNow - started;
        await host.StopAndDisposeAsync();

        Assert.True(took < TimeSpan.FromSeconds(5), $"relayed after {took}");
        Assert.Equal(["first", "heard"], seen.Where(s => s.Event.Key == "a").Select(s => s.Event.OrderId));
        Assert.Contains(seen, s => s.Event.OrderId == "unheard");
    }

    [Fact]
    public async Task Publishing_with_a_DbContext_that_has_no_transaction_is_refused_saying_how_to_begin_one()
    {
        using var dir = new TempDirectory("ef-outbox-no-tx");
        var db = dir.Database();
        await ShopDb.CreateAsync(db);
        var seen = new ConcurrentQueue<(OrderPlaced Event, string Id)>();
        var host = await EfHosts.StartAsync(Path.Combine(dir.Path, "log"), db, Orders(seen));
        var outbox = host.Services.GetRequiredService<TransactionalOutbox>();
        using (var scope = host.Services.CreateScope())
        {
            var shop = scope.ServiceProvider.GetRequiredService<ShopDb>();
            shop.Orders.Add(new Order { Id = "o1", Key = "a", AmountCents = 1 });
            var before = await Assert.ThrowsAsync<InvalidOperationException>(() => outbox.PublishAsync(shop, new OrderPlaced("o1", "a", 1)).AsTask());
            Assert.Contains("ShopDb has no current transaction", before.Message);
            Assert.Contains("BeginTransactionAsync()", before.Message);

            // Nor after its transaction has committed: the event would not be part of it.
            await using (var tx = await shop.Database.BeginTransactionAsync())
            {
                await shop.SaveChangesAsync();
                await tx.CommitAsync();
            }
            var after = await Assert.ThrowsAsync<InvalidOperationException>(() => outbox.PublishAsync(shop, new OrderPlaced("o1", "a", 1)).AsTask());
            Assert.Contains("no current transaction", after.Message);
        }
        await Assert.ThrowsAsync<ArgumentNullException>(() => outbox.PublishAsync((DbContext)null!, new OrderPlaced("o2", "a", 2)).AsTask());
        await host.StopAndDisposeAsync();

        Assert.Equal(0, await EfHosts.ScalarAsync(db, "SELECT COUNT(*) FROM herald_outbox"));
        Assert.Empty(seen);
    }

    [Fact]
    public void Adding_the_interceptor_twice_adds_it_once()
    {
        var options = new DbContextOptionsBuilder<ShopDb>().UseSqlite("Data Source=unused.db").UseHeraldOutbox().UseHeraldOutbox().Options;
        var interceptors = options.FindExtension<Microsoft.EntityFrameworkCore.Infrastructure.CoreOptionsExtension>()!.Interceptors!;
        Assert.Single(interceptors);
    }
}
