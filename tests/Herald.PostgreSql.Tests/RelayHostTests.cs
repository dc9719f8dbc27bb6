using System.Collections.Concurrent;
using Herald.Outbox;
using Herald.PostgreSql.Tests.Kit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace Herald.PostgreSql.Tests;

public sealed record NoteTaken(string Key, int Seq);

public sealed record OrderPlaced(string OrderId, decimal Amount);

public sealed record OrderCharged(string OrderId, decimal Amount);

/// <summary>Herald on PostgreSQL end to end, with hosts sharing one embedded log as a service's
/// processes share a broker: the relay woken by NOTIFY from another process, leadership passing
/// between relays, and handlers whose effects, events and inbox entry commit together.</summary>
public class RelayHostTests
{
    private static Action<HeraldBuilder> Notes(PgScope db, string name, ConcurrentQueue<(string Key, int Seq, string Id)>? seen, Action<OutboxOptions>? outbox = null) => h =>
    {
        h.UsePostgres(db.ConnectionString(name), outbox, schema: db.Schema);
        h.Topic("notes", partitions: 3);
        h.Event<NoteTaken>("notes", e => e.Key);
        if (seen is not null)
            h.Subscribe("audit", s => s.Handle<NoteTaken>((e, ctx, ct) =>
            {
                seen.Enqueue((e.Key, e.Seq, ctx.Envelope.Id));
                return ValueTask.CompletedTask;
            }));
    };

    private static async Task<NpgsqlConnection> OpenAsync(IHost host) =>
        (NpgsqlConnection)await host.Services.GetRequiredService<PostgresStore>().OpenConnectionAsync();

    [PostgresFact]
    public async Task A_commit_in_another_process_wakes_the_relay_through_NOTIFY_long_before_its_next_poll()
    {
        await using var db = new PgScope("wake");
        using var dir = new TempDirectory("wake");
        await using var log = PgHosts.OpenLog(dir.Path);
        var seen = new ConcurrentQueue<(string Key, int Seq, string Id)>();
        var relay = await PgHosts.StartAsync(log, Notes(db, "relay", seen, o => o.PollInterval = TimeSpan.FromMinutes(5)));
        var writer = await PgHosts.StartAsync(log, Notes(db, "writer", seen: null, o => o.RunRelay = false));
        try
        {
            // The relay leads and listens; from now on only a notification wakes it within 5 minutes.
            await Eventually.WaitUntilAsync(async () => (await db.PidsAsync(db.App("relay") + "/listen")).Count == 1
                && (await db.PidsAsync(db.App("relay") + "/lead")).Count == 1, TimeSpan.FromSeconds(20), "the relay listening and leading");
            var outbox = writer.Services.GetRequiredService<TransactionalOutbox>();
            for (var t = 0; t < 10; t++)
            {
                await using var tx = await outbox.BeginAsync();
                for (var i = 0; i < 3; i++) await tx.PublishAsync(new NoteTaken($"k{(t + i) % 4}", t * 3 + i));
                await tx.CommitAsync();
                // The next commit comes as the relay ends this round (removes, refreshes its
                // metrics): the wake it armed before looking catches it.
                await Eventually.WaitUntilAsync(() => seen.Count == (t + 1) * 3, TimeSpan.FromSeconds(20), $"transaction {t}'s events relayed");
            }
        }
        finally
        {
            await writer.StopAndDisposeAsync();
            await relay.StopAndDisposeAsync();
        }

        Assert.Equal(30, seen.Select(s => s.Id).Distinct().Count());
        foreach (var key in seen.Select(s => s.Key).Distinct())
        {
            var order = seen.Where(s => s.Key == key).Select(s => s.Seq).ToList();
            Assert.Equal(order.Order(), order);
        }
        Assert.Equal(0, await db.ScalarAsync($"SELECT count(*) FROM {db.Table("herald_outbox")}"));
    }

    [PostgresFact]
    public async Task Events_published_many_at_once_are_relayed_in_order_per_key_and_a_rolled_back_batch_publishes_none()
    {
        await using var db = new PgScope("many");
        using var dir = new TempDirectory("many");
        await using var log = PgHosts.OpenLog(dir.Path);
        var seen = new ConcurrentQueue<(string Key, int Seq, string Id)>();
        var host = await PgHosts.StartAsync(log, Notes(db, "many", seen));
        static IEnumerable<NoteTaken> Batch(int from, int to)
        {
            for (var n = from; n < to; n++) yield return new NoteTaken($"k{n % 7}", n);
        }
        try
        {
            var outbox = host.Services.GetRequiredService<TransactionalOutbox>();
            await using (var tx = await outbox.BeginAsync())
            {
                await tx.PublishManyAsync(Batch(0, 2_500)); // three inserts of up to a thousand
                await tx.CommitAsync();
            }
            await using (var tx = await outbox.BeginAsync())
            {
                await tx.PublishManyAsync(Batch(10_000, 11_500)); // rolled back
            }
            await Eventually.WaitUntilAsync(() => seen.Count >= 2_500, TimeSpan.FromSeconds(30), "2,500 events relayed and handled");
            await Eventually.WaitUntilAsync(async () => await db.ScalarAsync($"SELECT count(*) FROM {db.Table("herald_outbox")}") == 0, TimeSpan.FromSeconds(20), "the outbox emptied");
            await Task.Delay(200); // nothing more may come
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }

        Assert.Equal(2_500, seen.Count);
        Assert.Equal(2_500, seen.Select(s => s.Id).Distinct().Count());
        for (var k = 0; k < 7; k++)
            Assert.Equal(Enumerable.Range(0, 2_500).Where(n => n % 7 == k), seen.Where(s => s.Key == $"k{k}").Select(s => s.Seq));
    }

    [PostgresFact]
    public async Task Two_relays_take_turns_and_relay_every_event_once_in_order_per_key()
    {
        await using var db = new PgScope("turns");
        using var dir = new TempDirectory("turns");
        await using var log = PgHosts.OpenLog(dir.Path);
        var seen = new ConcurrentQueue<(string Key, int Seq, string Id)>();
        var first = await PgHosts.StartAsync(log, Notes(db, "first", seen, o => o.Lease = TimeSpan.FromSeconds(2)));
        var second = await PgHosts.StartAsync(log, Notes(db, "second", seen: null, o => o.Lease = TimeSpan.FromSeconds(2)));
        var outboxes = new[] { first, second }.Select(h => h.Services.GetRequiredService<TransactionalOutbox>()).ToArray();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(async w =>
        {
            for (var t = 0; t < 25; t++)
            {
                await using var tx = await outboxes[w % 2].BeginAsync();
                for (var i = 0; i < 4; i++) await tx.PublishAsync(new NoteTaken($"w{w}", t * 4 + i));
                await tx.CommitAsync();
            }
        }));
        await Eventually.WaitUntilAsync(() => seen.Count >= 800, what: "800 events relayed");

        // The host that consumes stops; whichever led, the second relays what comes next.
        await first.StopAndDisposeAsync();
        var moreSeen = new ConcurrentQueue<(string Key, int Seq, string Id)>();
        var third = await PgHosts.StartAsync(log, Notes(db, "third", moreSeen, o => o.RunRelay = false));
        await using (var tx = await outboxes[1].BeginAsync())
        {
            await tx.PublishAsync(new NoteTaken("late", 800));
            await tx.CommitAsync();
        }
        await Eventually.WaitUntilAsync(() => moreSeen.Any(s => s.Seq == 800), what: "the event after the first host stopped");
        await third.StopAndDisposeAsync();
        await second.StopAndDisposeAsync();

        Assert.Equal(800, seen.Count);
        Assert.Equal(800, seen.Select(s => s.Id).Distinct().Count());
        for (var w = 0; w < 8; w++) Assert.Equal(Enumerable.Range(0, 100), seen.Where(s => s.Key == $"w{w}").Select(s => s.Seq));
    }

    [PostgresFact]
    public async Task When_the_leading_relays_session_is_terminated_the_other_relays_everything_and_each_key_stays_in_order()
    {
        await using var db = new PgScope("failover");
        using var dir = new TempDirectory("failover");
        await using var log = PgHosts.OpenLog(dir.Path);
        var seen = new ConcurrentQueue<(string Key, int Seq, string Id)>();
        var hosts = new[]
        {
            await PgHosts.StartAsync(log, Notes(db, "one", seen, o => o.Lease = TimeSpan.FromSeconds(2))),
            await PgHosts.StartAsync(log, Notes(db, "two", seen: null, o => o.Lease = TimeSpan.FromSeconds(2))),
        };
        try
        {
            var outboxes = hosts.Select(h => h.Services.GetRequiredService<TransactionalOutbox>()).ToArray();
            async Task WriteAsync(int from, int count)
            {
                for (var n = from; n < from + count; n++)
                {
                    await using var tx = await outboxes[n % 2].BeginAsync();
                    await tx.PublishAsync(new NoteTaken($"k{n % 3}", n));
                    await tx.CommitAsync();
                }
            }
            await WriteAsync(0, 60);
            await Eventually.WaitUntilAsync(() => seen.Count >= 60, what: "the first 60 relayed");

            // Whichever leads loses its session, as when its connection breaks.
            var leader = await LeaderAsync(db, ["one", "two"]);
            Assert.Equal(1, await db.TerminateAsync(db.App(leader) + "/lead"));
            await WriteAsync(60, 60);
            await Eventually.WaitUntilAsync(() => seen.Select(s => s.Seq).Distinct().Count() == 120, what: "all 120 relayed");
        }
        finally
        {
            foreach (var host in hosts) await host.StopAndDisposeAsync();
        }

        // At least once: a publish in flight when the session died may come again, in order.
        for (var k = 0; k < 3; k++)
        {
            var firsts = seen.Where(s => s.Key == $"k{k}").Select(s => s.Seq).Distinct().ToList();
            Assert.Equal(Enumerable.Range(0, 120).Where(n => n % 3 == k), firsts);
        }
        Assert.Equal(0, await db.ScalarAsync($"SELECT count(*) FROM {db.Table("herald_outbox")}"));
    }

    [PostgresFact]
    public async Task When_the_relays_session_is_terminated_mid_batch_it_leads_again_on_a_new_one_and_relays_everything_in_order()
    {
        await using var db = new PgScope("midbatch");
        using var dir = new TempDirectory("midbatch");
        await using var log = PgHosts.OpenLog(dir.Path);
        var seen = new ConcurrentQueue<(string Key, int Seq, string Id)>();
        var terminations = 0;
        var host = await PgHosts.StartAsync(log, Notes(db, "relay", seen, o =>
        {
            o.BatchSize = 100;
            // The third round's events are on the log and still in the outbox, to be removed on the
            // session that holds the lead: an administrator terminates that session now.
            var rounds = 0;
            o.AfterPublish = async (ids, ct) =>
            {
                if (Interlocked.Increment(ref rounds) != 3) return;
                terminations = await db.TerminateAsync(db.App("relay") + "/lead");
            };
        }));
        try
        {
            var outbox = host.Services.GetRequiredService<TransactionalOutbox>();
            await using (var tx = await outbox.BeginAsync())
            {
                for (var n = 0; n < 1000; n++) await tx.PublishAsync(new NoteTaken($"k{n % 5}", n));
                await tx.CommitAsync();
            }
            await Eventually.WaitUntilAsync(async () => await db.ScalarAsync($"SELECT count(*) FROM {db.Table("herald_outbox")}") == 0,
                TimeSpan.FromSeconds(30), "the outbox emptied");
            await Eventually.WaitUntilAsync(() => seen.Select(s => s.Seq).Distinct().Count() == 1000, what: "all 1000 handled");
            Assert.Single(await db.PidsAsync(db.App("relay") + "/lead")); // leading again, on a new session
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }

        Assert.Equal(1, terminations);
        // The interrupted round could not be removed, so it was published again: at least once, and
        // every key's first sightings in the order written.
        Assert.True(seen.Count > 1000, $"{seen.Count} deliveries: the interrupted round was not published again");
        for (var k = 0; k < 5; k++)
        {
            var firsts = seen.Where(s => s.Key == $"k{k}").Select(s => s.Seq).Distinct().ToList();
            Assert.Equal(Enumerable.Range(0, 1000).Where(n => n % 5 == k), firsts);
        }
    }

    /// <summary>Which of the named hosts' relay sessions holds an advisory lock.</summary>
    private static async Task<string> LeaderAsync(PgScope db, string[] names)
    {
        string? leader = null;
        await Eventually.WaitUntilAsync(async () =>
        {
            foreach (var name in names)
                foreach (var pid in await db.PidsAsync(db.App(name) + "/lead"))
                    if (await db.ScalarAsync($"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = {pid}") == 1)
                        leader = name;
            return leader is not null;
        }, TimeSpan.FromSeconds(20), "a leader");
        return leader!;
    }

    [PostgresFact]
    public async Task A_handler_commits_its_effects_its_events_and_its_inbox_entry_together_and_a_failed_attempt_leaves_nothing()
    {
        await using var db = new PgScope("inbox");
        using var dir = new TempDirectory("inbox");
        await using var log = PgHosts.OpenLog(dir.Path);
        var charges = db.Table("charges");
        await db.ExecuteAsync($"CREATE SCHEMA IF NOT EXISTS \"{db.Schema}\"; CREATE TABLE {charges} (order_id text NOT NULL, amount numeric NOT NULL)");
        var runs = new ConcurrentQueue<string>();
        var charged = new ConcurrentQueue<string>();
        var host = await PgHosts.StartAsync(log, h =>
        {
            h.UsePostgres(db.ConnectionString("billing"), schema: db.Schema);
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
                })
                .Handle<OrderPlaced>(async (e, ctx, ct) =>
                {
                    runs.Enqueue(e.OrderId);
                    await using (var insert = new NpgsqlCommand($"INSERT INTO {charges} (order_id, amount) VALUES ($1, $2)", (NpgsqlConnection)ctx.Connection!, (NpgsqlTransaction)ctx.Transaction!))
                    {
                        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = e.OrderId });
                        insert.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = e.Amount });
                        await insert.ExecuteNonQueryAsync(ct);
                    }
                    await ctx.PublishAsync(new OrderCharged(e.OrderId, e.Amount), cancellationToken: ct);
                    // The first two attempts of every third order fail after their effects.
                    if (int.Parse(e.OrderId[1..], System.Globalization.CultureInfo.InvariantCulture) % 3 == 0 && ctx.Attempt <= 2)
                        throw new InvalidOperationException($"attempt {ctx.Attempt} of {e.OrderId} fails");
                }));
            h.Subscribe("ledger", s => s.Handle<OrderCharged>((e, ctx, ct) =>
            {
                charged.Enqueue(e.OrderId);
                return ValueTask.CompletedTask;
            }));
        });
        try
        {
            var publisher = host.Services.GetRequiredService<IEventPublisher>();
            for (var i = 0; i < 30; i++) await publisher.PublishAsync(new OrderPlaced($"o{i}", 10m + i));
            await Eventually.WaitUntilAsync(() => charged.Count >= 30, what: "30 charges published and handled");
            await Eventually.WaitUntilAsync(async () => await db.ScalarAsync($"SELECT count(*) FROM {db.Table("herald_outbox")}") == 0, what: "the outbox emptied");
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }

        Assert.Equal(30 + 2 * 10, runs.Count);                                    // every attempt ran
        Assert.Equal(30, await db.ScalarAsync($"SELECT count(*) FROM {charges}")); // only the successful ones left effects
        Assert.Equal(30, await db.ScalarAsync($"SELECT count(DISTINCT order_id) FROM {charges}"));
        Assert.Equal(30, await db.ScalarAsync($"SELECT count(*) FROM {db.Table("herald_inbox")} WHERE grp = 'billing'"));
        Assert.Equal(30, charged.Count);                                          // and events, once each
        Assert.Equal(30, charged.Distinct().Count());
    }
}
