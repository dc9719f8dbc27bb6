using Herald.Outbox;
using Herald.PostgreSql.Tests.Kit;
using Microsoft.Data.Sqlite;
using Npgsql;
using static Herald.PostgreSql.Tests.Kit.PgScope;

namespace Herald.PostgreSql.Tests;

/// <summary>The outbox table: what a transaction adds exists only if it commits, the relay reads
/// it in the order written, and an event waiting after a failed publish holds back only its key.</summary>
public class OutboxStoreTests
{
    private const long Now = 1_000_000;

    [PostgresFact]
    public async Task A_rolled_back_transaction_adds_nothing_and_committed_events_are_read_in_the_order_written_with_their_bytes()
    {
        await using var db = new PgScope("order");
        var store = db.Store();
        await AddAsync(store, commit: false, [Message("t", "k", "gone-1"), Message("t", "k", "gone-2")], [Message("u", null, "gone-3")]);
        Assert.Empty(await store.ReadDueAsync(100, Now));

        // One call with many events, then a second call in the same transaction.
        var first = Enumerable.Range(0, 300).Select(i => Message(i % 2 == 0 ? "t" : "u", i % 7 == 0 ? null : $"k{i % 5}", $"v{i}", createdMs: 5_000 + i, headerCount: i % 4)).ToArray();
        var second = new[] { Message("t", "k1", ""), Message("t", "", "empty-key") };
        await AddAsync(store, commit: true, first, second);

        var due = await store.ReadDueAsync(1000, Now);
        var written = first.Concat(second).ToArray();
        Assert.Equal(written.Length, due.Count);
        for (var i = 0; i < written.Length; i++)
        {
            Assert.Equal(written[i].Topic, due[i].Topic);
            Assert.Equal(written[i].Key, due[i].Key);
            Assert.Equal(written[i].Value, due[i].Value);
            Assert.Equal(written[i].Headers, due[i].Headers);
            Assert.Equal(written[i].HeaderCount, due[i].HeaderCount);
            Assert.Equal(written[i].CreatedMs, due[i].CreatedMs);
            Assert.Equal(0, due[i].Attempts);
            if (i > 0) Assert.True(due[i].Id > due[i - 1].Id);
        }
        Assert.Null(due[0].Key);         // null keys stay null
        Assert.Empty(due[^1].Key!);      // and empty ones empty
        Assert.Equal(due.Take(10).Select(m => m.Id), (await store.ReadDueAsync(10, Now)).Select(m => m.Id));
    }

    [PostgresFact]
    public async Task A_deferred_event_holds_back_the_later_events_of_its_topic_and_key_only_until_it_is_due()
    {
        await using var db = new PgScope("holdback");
        var store = db.Store();
        await AddAsync(store, commit: true,
        [
            Message("t", "k1", "0"), Message("t", "k2", "1"), Message("t", "k1", "2"),
            Message("t", null, "3"), Message("u", "k1", "4"), Message("t", "k2", "5"),
        ]);
        var ids = (await store.ReadDueAsync(10, Now)).Select(m => m.Id).ToArray();
        Assert.Equal(6, ids.Length);

        async Task<string[]> DueAt(long now) => (await store.ReadDueAsync(10, now)).Select(m => Text(m.Value)).ToArray();

        await store.DeferAsync(ids[0], attempts: 1, dueMs: Now + 1_000, "boom");
        // t/k1's first is not due and its second waits behind it; t/k2, the unkeyed one and u/k1 go on.
        Assert.Equal(["1", "3", "4", "5"], await DueAt(Now + 999));
        Assert.Equal(["0", "1", "2", "3", "4", "5"], await DueAt(Now + 1_000));
        Assert.Equal(1, (await store.ReadDueAsync(1, Now + 1_000))[0].Attempts);
        Assert.Equal("boom", await db.TextAsync($"SELECT last_error FROM {db.Table("herald_outbox")} WHERE id = {ids[0]}"));

        // A later event deferred holds back what comes after it, not what came before.
        await store.DeferAsync(ids[2], attempts: 1, dueMs: Now + 5_000, "later");
        await store.DeferAsync(ids[1], attempts: 2, dueMs: Now + 3_000, "again");
        Assert.Equal(["0", "3", "4"], await DueAt(Now + 2_000));
        Assert.Equal(["0", "1", "3", "4", "5"], await DueAt(Now + 3_000));
        Assert.Equal(["0", "1", "2", "3", "4", "5"], await DueAt(Now + 5_000));
    }

    [PostgresFact]
    public async Task Delete_removes_exactly_the_given_events_and_ignores_ids_that_are_gone()
    {
        await using var db = new PgScope("delete");
        var store = db.Store();
        await AddAsync(store, commit: true, Enumerable.Range(0, 10).Select(i => Message("t", $"k{i}", $"{i}")).ToArray());
        var ids = (await store.ReadDueAsync(10, Now)).Select(m => m.Id).ToArray();

        await store.DeleteAsync([ids[0], ids[3], ids[9], ids[9] + 1_000]);
        await store.DeleteAsync([]);

        Assert.Equal(["1", "2", "4", "5", "6", "7", "8"], (await store.ReadDueAsync(10, Now)).Select(m => Text(m.Value)));
        await store.DeleteAsync(ids);
        Assert.Empty(await store.ReadDueAsync(10, Now));
    }

    [PostgresFact]
    public async Task Stats_count_the_waiting_events_the_oldest_creation_time_and_the_events_that_failed_often()
    {
        await using var db = new PgScope("stats");
        var store = db.Store();
        Assert.Equal(new OutboxStats(0, null, 0), await store.StatsAsync(3));

        await AddAsync(store, commit: true, [Message("t", "a", "0", createdMs: 100), Message("t", "b", "1", createdMs: 200), Message("t", "c", "2", createdMs: 300)]);
        var ids = (await store.ReadDueAsync(10, Now)).Select(m => m.Id).ToArray();
        await store.DeferAsync(ids[0], attempts: 5, dueMs: Now, "x");
        await store.DeferAsync(ids[1], attempts: 2, dueMs: Now, "y");

        Assert.Equal(new OutboxStats(3, 100, 1), await store.StatsAsync(3));
        Assert.Equal(new OutboxStats(3, 100, 2), await store.StatsAsync(2));
        await store.DeleteAsync([ids[0]]);
        Assert.Equal(new OutboxStats(2, 200, 1), await store.StatsAsync(2));
    }

    [PostgresFact]
    public async Task A_transaction_that_has_ended_is_refused_and_nothing_is_added()
    {
        await using var db = new PgScope("ended");
        var store = db.Store();
        await using var connection = await store.OpenConnectionAsync();
        var transaction = await connection.BeginTransactionAsync();
        await transaction.CommitAsync();

        var completed = await Assert.ThrowsAsync<InvalidOperationException>(async () => await store.AddAsync(transaction, [Message("t", "k", "v")]));
        Assert.Contains("completed", completed.Message);
        await transaction.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await store.TryRecordAsync(transaction, "g", "e", Now));
        Assert.Empty(await store.ReadDueAsync(10, Now));
    }

    [Fact]
    public async Task A_transaction_of_another_database_provider_is_refused_naming_its_type()
    {
        await using var store = new PostgresStore("Host=localhost", "unused_schema");
        await using var sqlite = new SqliteConnection("Data Source=:memory:");
        await sqlite.OpenAsync();
        await using var transaction = await sqlite.BeginTransactionAsync();

        var add = await Assert.ThrowsAsync<ArgumentException>(async () => await store.AddAsync(transaction, [Message("t", "k", "v")]));
        var record = await Assert.ThrowsAsync<ArgumentException>(async () => await store.TryRecordAsync(transaction, "g", "e", Now));
        foreach (var error in new[] { add, record })
        {
            Assert.Equal("transaction", error.ParamName);
            Assert.Contains("Microsoft.Data.Sqlite.SqliteTransaction", error.Message);
            Assert.Contains(nameof(NpgsqlTransaction), error.Message);
        }
    }
}
