using Herald.PostgreSql.Tests.Kit;
using Npgsql;
using static Herald.PostgreSql.Tests.Kit.PgScope;

namespace Herald.PostgreSql.Tests;

/// <summary>Sessions the server ends under the store (an administrator's pg_terminate_backend, a
/// restart, a failover): the call on one fails with an NpgsqlException, nothing is half done, and
/// the next call works.</summary>
public class ConnectionLossTests
{
    private const long Now = 1_000_000;

    [PostgresFact]
    public async Task A_call_on_a_pooled_connection_whose_session_was_terminated_fails_cleanly_or_works_and_the_next_call_works()
    {
        await using var db = new PgScope("pooled");
        var store = db.Store();
        await AddAsync(store, commit: true, [Message("t", "k", "0"), Message("t", "k", "1"), Message("t", null, "2")]);
        Assert.Equal(3, (await store.ReadDueAsync(10, Now)).Count); // one pooled connection, idle now
        Assert.Equal(1, await db.TerminateAsync(db.App("a")));

        try
        {
            Assert.Equal(3, (await store.ReadDueAsync(10, Now)).Count);
        }
        catch (NpgsqlException)
        {
            // The dead connection's call fails; Npgsql discards it.
        }

        var due = await store.ReadDueAsync(10, Now);
        Assert.Equal(["0", "1", "2"], due.Select(m => Text(m.Value)));
        await store.DeferAsync(due[0].Id, 1, Now + 10, "retry");
        Assert.Equal(["2"], (await store.ReadDueAsync(10, Now)).Select(m => Text(m.Value)));
        Assert.Equal(3, (await store.StatsAsync(5)).Pending);
    }

    [PostgresFact]
    public async Task A_transaction_whose_session_is_terminated_before_it_commits_adds_nothing_and_the_next_one_commits()
    {
        await using var db = new PgScope("killedtx");
        var store = db.Store();
        await using (var connection = (NpgsqlConnection)await store.OpenConnectionAsync())
        {
            await using var transaction = await connection.BeginTransactionAsync();
            await store.AddAsync(transaction, [Message("t", "k", "lost")]);
            Assert.True(await store.TryRecordAsync(transaction, "g", "e", Now));
            await db.TerminatePidAsync(connection.ProcessID);
            await Assert.ThrowsAnyAsync<NpgsqlException>(async () => await transaction.CommitAsync());
        }

        await using (var connection = await store.OpenConnectionAsync())
        {
            await using var transaction = await connection.BeginTransactionAsync();
            await store.AddAsync(transaction, [Message("t", "k", "kept")]);
            Assert.True(await store.TryRecordAsync(transaction, "g", "e", Now));
            await transaction.CommitAsync();
        }
        Assert.Equal(["kept"], (await store.ReadDueAsync(10, Now)).Select(m => Text(m.Value)));
        Assert.Equal(1, await db.ScalarAsync($"SELECT count(*) FROM {db.Table("herald_inbox")}"));
    }

    [PostgresFact]
    public async Task A_listener_whose_session_is_terminated_throws_so_that_the_relay_listens_again()
    {
        await using var db = new PgScope("deaflisten");
        var store = db.Store();
        await store.InitializeAsync();
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = new CancellationTokenSource();
        var listen = store.ListenAsync(() => listening.TrySetResult(), stop.Token);
        await listening.Task.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(1, await db.TerminateAsync(db.App("a") + "/listen"));

        await Assert.ThrowsAnyAsync<NpgsqlException>(() => listen.WaitAsync(TimeSpan.FromSeconds(20)));
        // Listening again works.
        var again = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var relisten = store.ListenAsync(() => again.TrySetResult(), stop.Token);
        await again.Task.WaitAsync(TimeSpan.FromSeconds(10));
        stop.Cancel();
        await relisten.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
