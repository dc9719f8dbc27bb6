using Herald.PostgreSql.Tests.Kit;
using Npgsql;

namespace Herald.PostgreSql.Tests;

/// <summary>The inbox table: an event's id is recorded once per consumer group, in the handler's
/// transaction, and old entries are purged by age and by count, a bounded number per call.</summary>
public class InboxStoreTests
{
    private const long Now = 1_000_000;

    [PostgresFact]
    public async Task An_event_is_recorded_once_per_group_and_only_if_its_transaction_commits()
    {
        await using var db = new PgScope("record");
        var store = db.Store();
        await using var connection = await store.OpenConnectionAsync();

        await using (var rolledBack = await connection.BeginTransactionAsync())
        {
            Assert.True(await store.TryRecordAsync(rolledBack, "billing", "e1", Now));
            Assert.False(await store.TryRecordAsync(rolledBack, "billing", "e1", Now)); // seen in this transaction
            Assert.True(await store.TryRecordAsync(rolledBack, "shipping", "e1", Now)); // another group's
            await rolledBack.RollbackAsync();
        }
        await using (var committed = await connection.BeginTransactionAsync())
        {
            Assert.True(await store.TryRecordAsync(committed, "billing", "e1", Now)); // the rollback took it back
            await committed.CommitAsync();
        }
        await using (var redelivery = await connection.BeginTransactionAsync())
        {
            Assert.False(await store.TryRecordAsync(redelivery, "billing", "e1", Now + 5));
            Assert.True(await store.TryRecordAsync(redelivery, "billing", "e2", Now + 5));
            await redelivery.CommitAsync();
        }
        Assert.Equal(2, await db.ScalarAsync($"SELECT count(*) FROM {db.Table("herald_inbox")} WHERE grp = 'billing'"));
        Assert.Equal(Now, await db.ScalarAsync($"SELECT handled_ms FROM {db.Table("herald_inbox")} WHERE event_id = 'e1'"));
    }

    [PostgresTheory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public async Task Of_two_transactions_recording_one_event_at_once_the_second_waits_and_records_it_only_if_the_first_rolled_back(bool firstCommits, bool secondRecords)
    {
        await using var db = new PgScope("race");
        var store = db.Store();
        await using var one = (NpgsqlConnection)await store.OpenConnectionAsync();
        await using var two = (NpgsqlConnection)await store.OpenConnectionAsync();
        await using var first = await one.BeginTransactionAsync();
        await using var second = await two.BeginTransactionAsync();

        Assert.True(await store.TryRecordAsync(first, "g", "e", Now));
        var racing = store.TryRecordAsync(second, "g", "e", Now).AsTask();
        await Eventually.WaitUntilAsync(async () => await db.ScalarAsync(
            $"SELECT count(*) FROM pg_stat_activity WHERE pid = {two.ProcessID} AND wait_event_type = 'Lock'") == 1, TimeSpan.FromSeconds(10), "the second waiting on the first");
        Assert.False(racing.IsCompleted);

        if (firstCommits) await first.CommitAsync();
        else await first.RollbackAsync();
        Assert.Equal(secondRecords, await racing.WaitAsync(TimeSpan.FromSeconds(10)));
        await second.CommitAsync();
        Assert.Equal(1, await db.ScalarAsync($"SELECT count(*) FROM {db.Table("herald_inbox")}"));
    }

    [PostgresFact]
    public async Task The_inbox_is_purged_by_age_and_then_by_count_a_bounded_number_per_call()
    {
        await using var db = new PgScope("purge");
        var store = db.Store();
        await using (var connection = await store.OpenConnectionAsync())
        {
            await using var tx = await connection.BeginTransactionAsync();
            for (var i = 0; i < 300; i++) Assert.True(await store.TryRecordAsync(tx, "g", $"old-{i}", Now - 10_000 - i));
            for (var i = 0; i < 300; i++) Assert.True(await store.TryRecordAsync(tx, i % 2 == 0 ? "g" : "h", $"new-{i}", Now + i));
            await tx.CommitAsync();
        }
        // Older than 5 s: the 300 old ones, at most 128 a call.
        Assert.Equal(128, await store.PurgeAsync(Now - 5_000, keep: 1000, maxRows: 128));
        Assert.Equal(128, await store.PurgeAsync(Now - 5_000, keep: 1000, maxRows: 128));
        Assert.Equal(44, await store.PurgeAsync(Now - 5_000, keep: 1000, maxRows: 128));
        Assert.Equal(0, await store.PurgeAsync(Now - 5_000, keep: 1000, maxRows: 128));
        Assert.Equal(300, await db.ScalarAsync($"SELECT count(*) FROM {db.Table("herald_inbox")}"));
        // Beyond the newest 200: the oldest 100 of the 300 left, at most 60 a call.
        Assert.Equal(60, await store.PurgeAsync(Now - 5_000, keep: 200, maxRows: 60));
        Assert.Equal(40, await store.PurgeAsync(Now - 5_000, keep: 200, maxRows: 60));
        Assert.Equal(0, await store.PurgeAsync(Now - 5_000, keep: 200, maxRows: 60));
        Assert.Equal(200, await db.ScalarAsync($"SELECT count(*) FROM {db.Table("herald_inbox")} WHERE handled_ms >= {Now + 100}"));
        Assert.Equal(200, await db.ScalarAsync($"SELECT count(*) FROM {db.Table("herald_inbox")}"));

        // With the planner's estimate of the rows current, counting still finds what is beyond.
        await db.ExecuteAsync($"ANALYZE {db.Table("herald_inbox")}");
        Assert.Equal(150, await store.PurgeAsync(0, keep: 50, maxRows: 1000));
        Assert.Equal(0, await store.PurgeAsync(0, keep: 50, maxRows: 1000));
        Assert.Equal(50, await db.ScalarAsync($"SELECT count(*) FROM {db.Table("herald_inbox")} WHERE handled_ms >= {Now + 250}"));
    }
}
