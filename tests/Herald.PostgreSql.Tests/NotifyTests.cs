using System.Collections.Concurrent;
using Herald.PostgreSql.Tests.Kit;
using Npgsql;
using static Herald.PostgreSql.Tests.Kit.PgScope;

namespace Herald.PostgreSql.Tests;

/// <summary>LISTEN/NOTIFY: a transaction that adds outbox events announces them when, and only if,
/// it commits, so relays in every process hear of them at once.</summary>
public class NotifyTests
{
    [PostgresFact]
    public async Task A_listener_is_called_after_a_commit_that_added_events_and_not_after_a_rollback()
    {
        await using var db = new PgScope("listen");
        var store = db.Store();
        await store.InitializeAsync();
        var calls = 0;
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = new CancellationTokenSource();
        var listen = store.ListenAsync(() =>
        {
            if (Interlocked.Increment(ref calls) == 1) listening.TrySetResult();
        }, stop.Token);
        await listening.Task.WaitAsync(TimeSpan.FromSeconds(10)); // its call once it listens

        await AddAsync(store, commit: false, [Message("t", "k", "rolled back")]);
        await AddAsync(store, commit: true, [Message("t", "k", "committed")], [Message("t", "k", "committed too")]);
        await Eventually.WaitUntilAsync(() => Volatile.Read(ref calls) >= 2, TimeSpan.FromSeconds(10), "the commit's call");
        // Announcements arrive in commit order: had the rollback announced anything, it would have
        // come just before the commit's.
        await Task.Delay(200);
        Assert.Equal(2, Volatile.Read(ref calls));

        await AddAsync(store, commit: true, [Message("t", "k", "again")]);
        await Eventually.WaitUntilAsync(() => Volatile.Read(ref calls) >= 3, TimeSpan.FromSeconds(10), "the next commit's call");

        stop.Cancel();
        await listen.WaitAsync(TimeSpan.FromSeconds(10)); // returns once cancelled
        Assert.Empty(await db.PidsAsync(db.App("a") + "/listen")); // and its connection is closed
    }

    [PostgresFact]
    public async Task A_transaction_announces_its_events_once_when_it_commits_and_never_when_it_rolls_back()
    {
        await using var db = new PgScope("notify");
        var store = db.Store();
        await store.InitializeAsync();
        await using var listener = await db.OpenAdminAsync();
        var heard = new ConcurrentQueue<string>();
        listener.Notification += (_, e) => heard.Enqueue(e.Payload);
        await using (var listen = new NpgsqlCommand($"LISTEN \"{store.Channel}\"", listener)) await listen.ExecuteNonQueryAsync();

        // A marker sent by another session after a step: every announcement that step made arrives before it.
        async Task<string[]> HeardUpToAsync(string marker)
        {
            await using (var admin = await db.OpenAdminAsync())
            await using (var notify = new NpgsqlCommand($"SELECT pg_notify('{store.Channel}', '{marker}')", admin))
                await notify.ExecuteNonQueryAsync();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (!heard.Contains(marker))
            {
                Assert.True(DateTime.UtcNow < deadline, $"the marker {marker} did not arrive");
                await listener.WaitAsync(TimeSpan.FromMilliseconds(100));
            }
            var all = heard.ToArray();
            heard.Clear();
            return all;
        }

        await AddAsync(store, commit: false, [Message("t", "k", "0")], [Message("t", "k", "1")]);
        Assert.Equal(["rolled back"], await HeardUpToAsync("rolled back"));

        await using (var connection = await store.OpenConnectionAsync())
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await store.AddAsync(transaction, [Message("t", "k", "2")]);
            await store.AddAsync(transaction, [Message("t", "k", "3"), Message("t", "k", "4")]);
            Assert.Equal(["open"], await HeardUpToAsync("open")); // nothing while the transaction is open
            await transaction.CommitAsync();
        }
        Assert.Equal(["", "committed"], await HeardUpToAsync("committed")); // once for the transaction
    }
}
