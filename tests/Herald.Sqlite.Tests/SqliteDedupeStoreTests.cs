using System.Collections.Concurrent;
using Herald.Dedupe;
using Herald.Sqlite.Tests.Kit;
using Herald.Testing;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace Herald.Sqlite.Tests;

/// <summary>The dedupe store contract on <see cref="SqliteDedupeStore"/> (a fresh database file per
/// test), and what is particular to SQLite: marks shared through the file and kept across reopening,
/// the time to live counted from the write lock, the bounded purge and sweep of expired rows.</summary>
public sealed class SqliteDedupeStoreTests : DedupeStoreContract
{
    private static readonly TimeSpan Hour = TimeSpan.FromHours(1);

    private readonly TempDirectory _dir = new("dedupe");

    protected override IDedupeStore CreateStore() => new SqliteDedupeStore(_dir.Database());

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _dir.Dispose();
    }

    /// <summary>The same file through connections of its own (no pool shared with the first store),
    /// as another process opens it.</summary>
    private string SecondConnectionString() =>
        new SqliteConnectionStringBuilder(_dir.Database()) { Pooling = false }.ToString();

    private Task<long> RowsAsync(string where = "1 = 1") =>
        SqliteHosts.ScalarAsync(_dir.Database(), $"SELECT COUNT(*) FROM herald_dedupe WHERE {where}");

    [Fact]
    public async Task A_mark_is_seen_by_another_store_on_the_same_file()
    {
        var first = new SqliteDedupeStore(_dir.Database());
        var second = new SqliteDedupeStore(SecondConnectionString());

        Assert.True(await first.TryMarkAsync("orders/evt-1", Hour));
        Assert.True(await second.ContainsAsync("orders/evt-1"));
        Assert.False(await second.TryMarkAsync("orders/evt-1", Hour));

        Assert.True(await second.TryMarkAsync("orders/evt-2", Hour));
        Assert.True(await first.ContainsAsync("orders/evt-2"));
        Assert.False(await first.TryMarkAsync("orders/evt-2", Hour));
    }

    [Fact]
    public async Task Concurrent_marks_of_one_key_from_stores_with_their_own_connections_yield_exactly_one_winner()
    {
        const int stores = 8;
        var contenders = new SqliteDedupeStore[stores];
        for (int i = 0; i < stores; i++) contenders[i] = new SqliteDedupeStore(SecondConnectionString());
        Assert.False(await contenders[0].ContainsAsync("warm-up")); // creates the table, outside the race

        for (int round = 0; round < 5; round++)
        {
            string key = "race-" + round;
            var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var attempts = new Task<bool>[stores];
            for (int i = 0; i < stores; i++)
            {
                var store = contenders[i];
                attempts[i] = Task.Run(async () =>
                {
                    await start.Task;
                    return await store.TryMarkAsync(key, Hour);
                });
            }
            start.SetResult();
            bool[] results = await Task.WhenAll(attempts).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Single(results, won => won);
        }
        Assert.Equal(5, await RowsAsync());
    }

    [Fact]
    public async Task A_mark_survives_reopening_the_database()
    {
        Assert.True(await new SqliteDedupeStore(_dir.Database()).TryMarkAsync("orders/evt-1", Hour));
        SqliteConnection.ClearAllPools();

        var reopened = new SqliteDedupeStore(_dir.Database());
        Assert.True(await reopened.ContainsAsync("orders/evt-1"));
        Assert.False(await reopened.TryMarkAsync("orders/evt-1", Hour));
        Assert.True(await reopened.TryMarkAsync("orders/evt-2", Hour));
    }

    [Fact]
    public async Task Stores_in_different_tables_of_one_file_keep_their_marks_apart()
    {
        var orders = new SqliteDedupeStore(_dir.Database(), "orders_dedupe");
        var payments = new SqliteDedupeStore(_dir.Database(), "order"); // a keyword is a name too

        Assert.True(await orders.TryMarkAsync("evt-1", Hour));
        Assert.False(await payments.ContainsAsync("evt-1"));
        Assert.True(await payments.TryMarkAsync("evt-1", Hour));
        Assert.False(await payments.TryMarkAsync("evt-1", Hour));
    }

    [Fact]
    public async Task A_mark_expires_exactly_after_its_time_to_live_holding_through_its_last_millisecond()
    {
        var clock = new ManualClock();
        var store = new SqliteDedupeStore(_dir.Database(), timeProvider: clock);
        // Rounded up to a whole millisecond: 1.5 ms holds for 2.
        Assert.True(await store.TryMarkAsync("k", TimeSpan.FromTicks(15_000)));

        clock.Advance(TimeSpan.FromMilliseconds(2));
        Assert.True(await store.ContainsAsync("k"));
        Assert.False(await store.TryMarkAsync("k", Hour));

        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.False(await store.ContainsAsync("k"));
        Assert.True(await store.TryMarkAsync("k", Hour));
    }

    [Fact]
    public async Task A_mark_that_waits_for_the_write_lock_gets_its_whole_time_to_live_from_when_it_gets_it()
    {
        var clock = new ManualClock();
        var store = new SqliteDedupeStore(_dir.Database(), timeProvider: clock);
        Assert.False(await store.ContainsAsync("k")); // creates the table before the lock is taken

        await using var writer = new SqliteConnection(SecondConnectionString());
        await writer.OpenAsync();
        var held = writer.BeginTransaction(deferred: false); // BEGIN IMMEDIATE: the write lock
        int readsBefore = clock.Reads;

        // Microsoft.Data.Sqlite runs synchronously, so the mark blocks a thread of its own.
        Task<bool> mark = Task.Run(async () => await store.TryMarkAsync("k", TimeSpan.FromSeconds(10)));
        // A mark that read the clock before waiting would do it at once; this one must not read it at all while it waits.
        var deadline = DateTime.UtcNow + TimeSpan.FromMilliseconds(300);
        while (DateTime.UtcNow < deadline && !mark.IsCompleted)
        {
            Assert.Equal(readsBefore, clock.Reads);
            await Task.Delay(10);
        }
        Assert.False(mark.IsCompleted, "the mark did not wait for the write lock another connection holds");

        clock.Advance(Hour);
        held.Rollback();
        held.Dispose();
        Assert.True(await mark.WaitAsync(TimeSpan.FromSeconds(30)));

        long expected = clock.GetUtcNow().ToUnixTimeMilliseconds() + 10_000;
        Assert.Equal(expected, await SqliteHosts.ScalarAsync(_dir.Database(), "SELECT expires_ms FROM herald_dedupe WHERE \"key\" = 'k'"));
    }

    [Fact]
    public async Task Marks_waiting_for_the_write_lock_leave_the_thread_pool_free()
    {
        var store = new SqliteDedupeStore(_dir.Database());
        Assert.False(await store.ContainsAsync("k")); // creates the table before the lock is taken

        await using var writer = new SqliteConnection(SecondConnectionString());
        await writer.OpenAsync();
        var held = writer.BeginTransaction(deferred: false); // BEGIN IMMEDIATE: another process's write
        var marks = new Task<bool>[64];
        try
        {
            // On the pool's global queue, first in first out (Task.Run from a pool thread would use
            // its local queue, last in first out, and let the probe below jump the queue).
            for (int i = 0; i < marks.Length; i++)
            {
                string key = "k" + i;
                marks[i] = Task.Factory.StartNew(() => store.TryMarkAsync(key, Hour).AsTask(),
                    CancellationToken.None, TaskCreationOptions.PreferFairness, TaskScheduler.Default).Unwrap();
            }

            // Queued behind the marks: it runs at once unless each of them blocks a pool thread, and
            // the pool adds threads at about two a second.
            await Task.Factory.StartNew(() => { }, CancellationToken.None, TaskCreationOptions.PreferFairness, TaskScheduler.Default)
                .WaitAsync(TimeSpan.FromSeconds(3));
            Assert.DoesNotContain(marks, m => m.IsCompleted);
        }
        finally
        {
            held.Rollback();
            held.Dispose();
        }

        bool[] results = await Task.WhenAll(marks).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(results, Assert.True);
        Assert.Equal(64, await RowsAsync());
    }

    [Fact]
    public async Task Purge_deletes_only_expired_rows()
    {
        var clock = new ManualClock();
        var store = new SqliteDedupeStore(_dir.Database(), timeProvider: clock);
        foreach (string key in new[] { "expired-1", "expired-2", "expired-3" }) Assert.True(await store.TryMarkAsync(key, TimeSpan.FromSeconds(1)));
        foreach (string key in new[] { "live-1", "live-2" }) Assert.True(await store.TryMarkAsync(key, Hour));
        Assert.True(await store.TryMarkAsync("last-millisecond", TimeSpan.FromSeconds(2)));

        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(3, await store.PurgeExpiredAsync());

        Assert.Equal(3, await RowsAsync());
        Assert.Equal(0, await RowsAsync("\"key\" LIKE 'expired-%'"));
        foreach (string key in new[] { "live-1", "live-2", "last-millisecond" }) Assert.True(await store.ContainsAsync(key));
        Assert.Equal(0, await store.PurgeExpiredAsync());

        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, await store.PurgeExpiredAsync());
        Assert.Equal(2, await RowsAsync());
    }

    [Fact]
    public async Task Purge_deletes_at_most_the_rows_asked_for_soonest_expired_first()
    {
        var clock = new ManualClock();
        var store = new SqliteDedupeStore(_dir.Database(), timeProvider: clock);
        for (int i = 5; i >= 1; i--) Assert.True(await store.TryMarkAsync("k" + i, TimeSpan.FromSeconds(i)));
        clock.Advance(TimeSpan.FromSeconds(10));

        Assert.Equal(2, await store.PurgeExpiredAsync(maxRows: 2));
        Assert.Equal(0, await RowsAsync("\"key\" IN ('k1', 'k2')"));
        Assert.Equal(3, await RowsAsync());
        Assert.Equal(2, await store.PurgeExpiredAsync(maxRows: 2));
        Assert.Equal(1, await store.PurgeExpiredAsync(maxRows: 2));
        Assert.Equal(0, await store.PurgeExpiredAsync(maxRows: 2));
        Assert.Equal(0, await RowsAsync());
    }

    [Fact]
    public async Task Purge_by_default_deletes_at_most_a_batch_per_call()
    {
        var store = new SqliteDedupeStore(_dir.Database());
        Assert.False(await store.ContainsAsync("creates-the-table"));
        const int rows = SqliteDedupeStore.PurgeBatchSize + 7;
        await SqliteHosts.ExecuteAsync(_dir.Database(),
            $"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) " +
            "INSERT INTO herald_dedupe (\"key\", expires_ms) SELECT 'expired-' || i, i FROM n;");
        Assert.True(await store.TryMarkAsync("live", Hour)); // and sweeps two expired rows

        Assert.Equal(SqliteDedupeStore.PurgeBatchSize, await store.PurgeExpiredAsync());
        Assert.Equal(5, await store.PurgeExpiredAsync());
        Assert.Equal(0, await store.PurgeExpiredAsync());
        Assert.Equal(1, await RowsAsync());
        Assert.True(await store.ContainsAsync("live"));
    }

    [Fact]
    public async Task Marking_deletes_expired_rows_so_the_table_follows_the_live_marks_without_a_purge()
    {
        var clock = new ManualClock();
        var store = new SqliteDedupeStore(_dir.Database(), timeProvider: clock);
        for (int i = 0; i < 100; i++) Assert.True(await store.TryMarkAsync("burst-" + i, TimeSpan.FromSeconds(1)));
        clock.Advance(TimeSpan.FromSeconds(2));

        for (int i = 0; i < 50; i++)
        {
            Assert.True(await store.TryMarkAsync("later-" + i, Hour));
            Assert.Equal(100 - 2 * (i + 1) + (i + 1), await RowsAsync());
        }
        Assert.Equal(50, await RowsAsync());
        // A refused mark sweeps too: nothing expired is left to sweep here, and nothing live goes.
        Assert.False(await store.TryMarkAsync("later-0", Hour));
        Assert.Equal(50, await RowsAsync());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(SqliteDedupeStore.PurgeBatchSize + 1)]
    public async Task A_purge_size_out_of_range_is_refused_naming_it(int maxRows)
    {
        var store = new SqliteDedupeStore(_dir.Database());
        var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => store.PurgeExpiredAsync(maxRows).AsTask());
        Assert.Equal("maxRows", e.ParamName);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("Data Source=:memory:")]
    [InlineData("Data Source=dedupe;Mode=Memory;Cache=Shared")]
    [InlineData("Data Source=")]
    [InlineData("Data Source=x.db;Mode=ReadOnly")]
    [InlineData("Data Source=x.db;Not A Keyword=1")]
    public void A_connection_string_that_is_no_writable_database_file_is_refused_naming_it(string connectionString)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => new SqliteDedupeStore(connectionString));
        Assert.Equal("connectionString", e.ParamName);
    }

    [Theory]
    [InlineData("")]
    [InlineData("1dedupe")]
    [InlineData("herald-dedupe")]
    [InlineData("herald dedupe")]
    [InlineData("dedupe\"; DROP TABLE x; --")]
    [InlineData("sqlite_dedupe")]
    [InlineData("a123456789012345678901234567890123456789012345678901234567890123")]
    public void A_table_name_that_is_not_a_plain_identifier_is_refused_naming_it(string tableName)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => new SqliteDedupeStore(_dir.Database(), tableName));
        Assert.Equal("tableName", e.ParamName);
    }

    [Fact]
    public async Task A_subscription_with_the_sqlite_dedupe_store_runs_a_redelivered_event_once()
    {
        var runs = new ConcurrentQueue<string>();
        var host = await SqliteHosts.StartAsync(Path.Combine(_dir.Path, "log"), h =>
        {
            h.UseSqliteDedupe(_dir.Database());
            h.Topic("orders", partitions: 1);
            h.Event<OrderPlaced>("orders", e => e.OrderId);
            h.Subscribe("billing", s => s
                .UseDedupe(TimeSpan.FromMinutes(5))
                .Handle<OrderPlaced>((e, ctx, ct) =>
                {
                    runs.Enqueue(ctx.Envelope.Id + ":" + e.OrderId);
                    return ValueTask.CompletedTask;
                }));
        });
        try
        {
            var publisher = host.Services.GetRequiredService<IEventPublisher>();
            // The second is a redelivery of the first (same id); the third follows both on their key.
            await publisher.PublishAsync(new OrderPlaced("o1", 10m), new PublishOptions { Id = "evt-1" });
            await publisher.PublishAsync(new OrderPlaced("o1", 10m), new PublishOptions { Id = "evt-1" });
            await publisher.PublishAsync(new OrderPlaced("o1", 20m), new PublishOptions { Id = "evt-2" });
            await SqliteHosts.WaitUntilAsync(() => runs.Count >= 2 && runs.Contains("evt-2:o1"), what: "evt-2 handled");

            // Marked once the handler has returned, so awaited rather than read at once.
            await WaitUntilAsync(async () => await RowsAsync("\"key\" IN ('billing/evt-1', 'billing/evt-2')") == 2, "both events marked");
            Assert.Equal(["evt-1:o1", "evt-2:o1"], runs.ToArray());
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting for {what}");
            await Task.Delay(10);
        }
    }

    /// <summary>A wall clock the test moves by hand, counting how often the store reads it.</summary>
    private sealed class ManualClock : TimeProvider
    {
        private long _utcTicks = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero).UtcTicks;
        private int _reads;

        public int Reads => Volatile.Read(ref _reads);

        public override DateTimeOffset GetUtcNow()
        {
            Interlocked.Increment(ref _reads);
            return new DateTimeOffset(Interlocked.Read(ref _utcTicks), TimeSpan.Zero);
        }

        public void Advance(TimeSpan by) => Interlocked.Add(ref _utcTicks, by.Ticks);
    }
}
