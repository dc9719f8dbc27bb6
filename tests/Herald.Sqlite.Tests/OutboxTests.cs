using System.Collections.Concurrent;
using Herald.Embedded;
using Herald.Log;
using Herald.Outbox;
using Herald.Sqlite.Tests.Kit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Herald.Sqlite.Tests;

public sealed record NoteTaken(string Key, int Seq);

/// <summary>The transactional outbox on SQLite, end to end: application transactions write events
/// beside their state, the relay publishes what committed to the embedded log, subscribers get it.</summary>
public class OutboxTests
{
    private static Action<HeraldBuilder> Notes(string db, ConcurrentQueue<(string Key, int Seq, string Id)> seen, Action<OutboxOptions>? outbox = null) => h =>
    {
        h.UseSqlite(db, outbox);
        h.Topic("notes", partitions: 3);
        h.Event<NoteTaken>("notes", e => e.Key);
        h.Subscribe("audit", s => s.Handle<NoteTaken>((e, ctx, ct) =>
        {
            seen.Enqueue((e.Key, e.Seq, ctx.Envelope.Id));
            return ValueTask.CompletedTask;
        }));
    };

    private static async Task CreateNotesTableAsync(string db) =>
        await SqliteHosts.ExecuteAsync(db, "CREATE TABLE IF NOT EXISTS notes (key TEXT NOT NULL, seq INTEGER NOT NULL)");

    [Fact]
    public async Task Committed_transactions_publish_each_event_once_in_order_per_key_and_rolled_back_ones_publish_nothing()
    {
        using var dir = new TempDirectory("outbox-commit");
        var db = dir.Database();
        await CreateNotesTableAsync(db);
        var seen = new ConcurrentQueue<(string Key, int Seq, string Id)>();
        var host = await SqliteHosts.StartAsync(Path.Combine(dir.Path, "log"), Notes(db, seen));
        var outbox = host.Services.GetRequiredService<TransactionalOutbox>();
        var expected = new Dictionary<string, List<int>>();
        var seq = 0;
        for (var t = 0; t < 60; t++)
        {
            await using var tx = await outbox.BeginAsync();
            var commit = t % 3 != 2;
            for (var i = 0; i < 4; i++)
            {
                var key = $"k{(t + i) % 5}";
                var n = seq++;
                await using (var insert = tx.CreateCommand($"INSERT INTO notes (key, seq) VALUES ('{key}', {n})")) await insert.ExecuteNonQueryAsync();
                await tx.PublishAsync(new NoteTaken(key, n));
                if (commit) (expected.TryGetValue(key, out var list) ? list : expected[key] = []).Add(n);
            }
            if (commit) await tx.CommitAsync(); // the others roll back when disposed
        }
        var total = expected.Values.Sum(l => l.Count);
        await SqliteHosts.WaitUntilAsync(() => seen.Count >= total, what: $"{total} events relayed and handled");
        await SqliteHosts.WaitUntilAsync(() => SqliteHosts.ScalarAsync(db, "SELECT COUNT(*) FROM herald_outbox").Result == 0, what: "the outbox emptied");
        await Task.Delay(200); // nothing more may come
        await host.StopAndDisposeAsync();

        Assert.Equal(total, seen.Count);
        Assert.Equal(total, seen.Select(s => s.Id).Distinct().Count());
        foreach (var (key, list) in expected)
            Assert.Equal(list, seen.Where(s => s.Key == key).Select(s => s.Seq).ToList());
        Assert.Equal(total, await SqliteHosts.ScalarAsync(db, "SELECT COUNT(*) FROM notes")); // the state of the rolled back ones is gone too
    }

    [Fact]
    public async Task A_commit_wakes_the_relay_at_once_rather_than_at_its_next_poll()
    {
        using var dir = new TempDirectory("outbox-wake");
        var db = dir.Database();
        var seen = new ConcurrentQueue<(string Key, int Seq, string Id)>();
        var host = await SqliteHosts.StartAsync(Path.Combine(dir.Path, "log"), Notes(db, seen, o => o.PollInterval = TimeSpan.FromMinutes(5)));
        var outbox = host.Services.GetRequiredService<TransactionalOutbox>();
        await Task.Delay(300); // the relay has made its first round and now waits for a wake or its 5-minute poll
        for (var i = 0; i < 3; i++)
        {
            var started = DateTime.UtcNow;
            await using (var tx = await outbox.BeginAsync())
            {
                await tx.PublishAsync(new NoteTaken("a", i));
                await tx.CommitAsync();
            }
            await SqliteHosts.WaitUntilAsync(() => seen.Count == i + 1, TimeSpan.FromSeconds(10), $"event {i} relayed after its commit");
            Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5));
        }
        await host.StopAndDisposeAsync();
    }

    [Fact]
    public async Task A_commit_made_while_the_relay_is_busy_with_a_round_is_relayed_without_waiting_for_the_poll()
    {
        using var dir = new TempDirectory("outbox-busy-wake");
        var db = dir.Database();
        var seen = new ConcurrentQueue<(string Key, int Seq, string Id)>();
        TransactionalOutbox? outbox = null;
        var once = 0;
        var host = await SqliteHosts.StartAsync(Path.Combine(dir.Path, "log"), Notes(db, seen, o =>
        {
            o.PollInterval = TimeSpan.FromMinutes(5);
            o.EagerPollInterval = TimeSpan.FromMinutes(5);
            // In the middle of the first round (published, not yet removed): another transaction
            // commits. The round has read the outbox already; only the commit's wake can bring the
            // relay back before its 5-minute poll.
            o.AfterPublish = async (_, ct) =>
            {
                if (Interlocked.Exchange(ref once, 1) != 0) return;
                await Task.Run(async () =>
                {
                    await using var tx = await outbox!.BeginAsync(ct);
                    await tx.PublishAsync(new NoteTaken("b", 1), cancellationToken: ct);
                    await tx.CommitAsync(ct);
                }, ct);
            };
        }));
        outbox = host.Services.GetRequiredService<TransactionalOutbox>();
        await using (var tx = await outbox.BeginAsync())
        {
            await tx.PublishAsync(new NoteTaken("a", 0));
            await tx.CommitAsync();
        }
        await SqliteHosts.WaitUntilAsync(() => seen.Count == 2, TimeSpan.FromSeconds(20), "both events relayed");
        await host.StopAndDisposeAsync();
    }

    [Fact]
    public async Task A_transaction_on_another_database_is_refused_rather_than_written_where_no_relay_reads()
    {
        using var dir = new TempDirectory("outbox-foreign");
        var store = new SqliteStore(dir.Database("outbox.db"));
        await store.InitializeAsync();
        var other = new SqliteStore(dir.Database("other.db")); // Herald's tables there too
        await other.InitializeAsync();
        await using var connection = await other.OpenConnectionAsync();
        await using var tx = await connection.BeginTransactionAsync();
        var error = await Assert.ThrowsAsync<ArgumentException>(async () =>
            await store.AddAsync(tx, [new Herald.Outbox.OutboxMessage(0, "notes", null, [1], [], 0, 0, 0)]));
        Assert.Equal("transaction", error.ParamName);
        Assert.Contains("other.db", error.Message);
    }

    [Fact]
    public async Task Events_published_many_at_once_are_relayed_in_order_per_key_and_a_rolled_back_batch_publishes_none()
    {
        using var dir = new TempDirectory("outbox-many");
        var db = dir.Database();
        var seen = new ConcurrentQueue<(string Key, int Seq, string Id)>();
        var host = await SqliteHosts.StartAsync(Path.Combine(dir.Path, "log"), Notes(db, seen));
        var outbox = host.Services.GetRequiredService<TransactionalOutbox>();
        var store = host.Services.GetRequiredService<SqliteStore>();
        static IEnumerable<NoteTaken> Batch(int from, int to)
        {
            for (var n = from; n < to; n++) yield return new NoteTaken($"k{n % 7}", n);
        }
        // More than one store call's worth (a thousand) in the first, kept; the second rolled back;
        // the third on a transaction the application commits itself.
        await using (var tx = await outbox.BeginAsync())
        {
            await tx.PublishManyAsync(Batch(0, 2_500));
            await tx.CommitAsync();
        }
        await using (var tx = await outbox.BeginAsync())
        {
            await tx.PublishManyAsync(Batch(10_000, 11_500));
        }
        await using (var connection = await store.OpenConnectionAsync())
        {
            await using var transaction = await connection.BeginTransactionAsync();
            await outbox.PublishManyAsync(transaction, Batch(2_500, 2_600));
            await transaction.CommitAsync();
        }
        await SqliteHosts.WaitUntilAsync(() => seen.Count >= 2_600, what: "2,600 events relayed and handled");
        await SqliteHosts.WaitUntilAsync(() => SqliteHosts.ScalarAsync(db, "SELECT COUNT(*) FROM herald_outbox").Result == 0, what: "the outbox emptied");
        await Task.Delay(200); // nothing more may come
        await host.StopAndDisposeAsync();

        Assert.Equal(2_600, seen.Count);
        Assert.Equal(2_600, seen.Select(s => s.Id).Distinct().Count());
        for (var k = 0; k < 7; k++)
            Assert.Equal(Enumerable.Range(0, 2_600).Where(n => n % 7 == k), seen.Where(s => s.Key == $"k{k}").Select(s => s.Seq));
    }

    [Fact]
    public async Task Looking_for_held_back_keys_uses_the_index_of_deferred_events_rather_than_scanning_the_outbox()
    {
        // The relay asks every round which keys wait behind a failed publish. Written as
        // due_ms > $now alone ($now a current time, as the relay passes it), SQLite could not tell
        // that the partial index (due_ms > 0) applies and scanned the whole outbox each round: a
        // full outbox relayed at half speed.
        using var dir = new TempDirectory("outbox-plan");
        var db = dir.Database();
        var store = new SqliteStore(db);
        await store.InitializeAsync();
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection(db);
        await connection.OpenAsync();
        await using var explain = connection.CreateCommand();
        explain.CommandText = "EXPLAIN QUERY PLAN " + SqliteStore.HeldKeysSql("herald_");
        explain.Parameters.AddWithValue("$now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var plan = new List<string>();
        await using (var reader = await explain.ExecuteReaderAsync())
            while (await reader.ReadAsync()) plan.Add(reader.GetString(3));
        Assert.True(plan.Any(line => line.Contains("herald_outbox_deferred", StringComparison.Ordinal)), string.Join(" | ", plan));
        Assert.DoesNotContain(plan, line => line.StartsWith("SCAN herald_outbox", StringComparison.Ordinal) && !line.Contains("INDEX", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Events_written_on_a_transaction_the_application_commits_itself_are_relayed_too()
    {
        using var dir = new TempDirectory("outbox-own-tx");
        var db = dir.Database();
        await CreateNotesTableAsync(db);
        var seen = new ConcurrentQueue<(string Key, int Seq, string Id)>();
        var host = await SqliteHosts.StartAsync(Path.Combine(dir.Path, "log"), Notes(db, seen));
        var outbox = host.Services.GetRequiredService<TransactionalOutbox>();
        var store = host.Services.GetRequiredService<SqliteStore>();
        await using (var connection = await store.OpenConnectionAsync())
        {
            await using var transaction = await connection.BeginTransactionAsync();
            await using (var insert = connection.CreateCommand())
            {
                insert.Transaction = transaction;
                insert.CommandText = "INSERT INTO notes (key, seq) VALUES ('own', 1)";
                await insert.ExecuteNonQueryAsync();
            }
            await outbox.PublishAsync(transaction, new NoteTaken("own", 1));
            await transaction.CommitAsync(); // Herald is not told: the relay polls eagerly for a while
        }
        await SqliteHosts.WaitUntilAsync(() => seen.Count == 1, TimeSpan.FromSeconds(10), "the event relayed");
        await host.StopAndDisposeAsync();
    }

    [Fact]
    public async Task An_event_that_cannot_be_published_holds_back_only_its_own_key_and_is_reported_stuck()
    {
        using var dir = new TempDirectory("outbox-stuck");
        var db = dir.Database();
        var seen = new ConcurrentQueue<(string Key, int Seq, string Id)>();
        var host = await SqliteHosts.StartAsync(Path.Combine(dir.Path, "log"), h =>
        {
            Notes(db, seen, o =>
            {
                o.RetryDelay = TimeSpan.FromMilliseconds(20);
                o.MaxRetryDelay = TimeSpan.FromMilliseconds(50);
                o.StuckAttempts = 2;
            })(h);
            // A 4 KiB batch limit: the big event below can never be appended.
            h.Topic("notes", partitions: 3, t => t.MaxBatchBytes = 4096);
        });
        var outbox = host.Services.GetRequiredService<TransactionalOutbox>();
        await using (var tx = await outbox.BeginAsync())
        {
            await tx.PublishAsync(new NoteTaken("blocked", 0), new PublishOptions { Key = "blocked" });
            await tx.PublishAsync(new NoteTaken("blocked" + new string('x', 8000), 1), new PublishOptions { Key = "blocked" }); // too large
            await tx.PublishAsync(new NoteTaken("blocked", 2), new PublishOptions { Key = "blocked" }); // waits behind it
            await tx.PublishAsync(new NoteTaken("free", 3), new PublishOptions { Key = "free" });
            await tx.CommitAsync();
        }
        await using (var tx = await outbox.BeginAsync())
        {
            await tx.PublishAsync(new NoteTaken("free", 4), new PublishOptions { Key = "free" });
            await tx.CommitAsync();
        }
        await SqliteHosts.WaitUntilAsync(() => seen.Count == 3, what: "the events before the bad one and the other key's");
        var store = host.Services.GetRequiredService<SqliteStore>();
        await SqliteHosts.WaitUntilAsync(() => store.StatsAsync(2).AsTask().Result.Stuck == 1, what: "the bad event reported stuck");
        await Task.Delay(300);
        var stats = await store.StatsAsync(2);
        await host.StopAndDisposeAsync();

        Assert.Equal([0, 3, 4], seen.Select(s => s.Seq).Order());
        Assert.Equal(2, stats.Pending); // the bad one and the one behind it
        Assert.NotNull(stats.OldestCreatedMs);
        Assert.Contains("RecordTooLarge", await LastErrorAsync(db));
    }

    private static async Task<string> LastErrorAsync(string db)
    {
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection(db);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT last_error FROM herald_outbox WHERE last_error IS NOT NULL";
        return (string)(await command.ExecuteScalarAsync())!;
    }

    [Fact]
    public async Task Two_relays_on_one_database_take_turns_and_never_relay_an_event_twice()
    {
        using var dir = new TempDirectory("outbox-two-relays");
        var db = dir.Database();
        await using var log = EmbeddedLog.Open(Path.Combine(dir.Path, "log"), new EmbeddedLogOptions { MaintenanceInterval = null });
        var seen = new ConcurrentQueue<(string Key, int Seq, string Id)>();
        // Two hosts over one log and one database, as two processes of a service would be: one of
        // them consumes, both write to the outbox, both run a relay.
        var first = await SqliteHosts.StartAsync(Path.Combine(dir.Path, "unused"), h =>
        {
            Notes(db, seen, o => o.Lease = TimeSpan.FromSeconds(2))(h);
            h.UseTransport(_ => new EmbeddedTransport(log, ownsLog: false));
        });
        var second = await SqliteHosts.StartAsync(Path.Combine(dir.Path, "unused"), h =>
        {
            h.UseSqlite(db, o => o.Lease = TimeSpan.FromSeconds(2));
            h.Topic("notes", partitions: 3);
            h.Event<NoteTaken>("notes", e => e.Key);
            h.UseTransport(_ => new EmbeddedTransport(log, ownsLog: false));
        });
        var outboxes = new[] { first, second }.Select(h => h.Services.GetRequiredService<TransactionalOutbox>()).ToArray();
        var writes = Enumerable.Range(0, 8).Select(async w =>
        {
            for (var t = 0; t < 25; t++)
            {
                await using var tx = await outboxes[w % 2].BeginAsync();
                for (var i = 0; i < 4; i++) await tx.PublishAsync(new NoteTaken($"w{w}", t * 4 + i));
                await tx.CommitAsync();
            }
        });
        await Task.WhenAll(writes);
        await SqliteHosts.WaitUntilAsync(() => seen.Count >= 800, what: "800 events relayed");
        // The leader stops cleanly and gives the lease up: the other relays what comes next.
        await first.StopAsync();
        var moreSeen = new ConcurrentQueue<(string Key, int Seq, string Id)>();
        var third = await SqliteHosts.StartAsync(Path.Combine(dir.Path, "unused"), h =>
        {
            Notes(db, moreSeen, o => o.RunRelay = false)(h); // consumes only; the second host relays
            h.UseTransport(_ => new EmbeddedTransport(log, ownsLog: false));
        });
        await using (var tx = await outboxes[1].BeginAsync())
        {
            await tx.PublishAsync(new NoteTaken("late", 800));
            await tx.CommitAsync();
        }
        await SqliteHosts.WaitUntilAsync(() => moreSeen.Any(s => s.Seq == 800), what: "the event after the first relay stopped");
        await third.StopAndDisposeAsync();
        await second.StopAndDisposeAsync();
        if (first is IAsyncDisposable a) await a.DisposeAsync();

        Assert.Equal(800, seen.Count);
        Assert.Equal(800, seen.Select(s => s.Id).Distinct().Count());
        for (var w = 0; w < 8; w++) Assert.Equal(Enumerable.Range(0, 100), seen.Where(s => s.Key == $"w{w}").Select(s => s.Seq));
    }
}
