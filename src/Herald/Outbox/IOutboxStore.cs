using System.Data.Common;

namespace Herald.Outbox;

/// <summary>The outbox table of a service's own database (SQLite, PostgreSQL). Events are added
/// inside the application's transaction, beside its state change; the relay reads them in order
/// and removes them once the transport has them durably.</summary>
public interface IOutboxStore
{
    /// <summary>Creates or migrates the store's tables; idempotent, safe to run from several processes at once.</summary>
    ValueTask InitializeAsync(CancellationToken cancellationToken = default);

    /// <summary>An open connection to the store's database (the tables initialized).</summary>
    ValueTask<DbConnection> OpenConnectionAsync(CancellationToken cancellationToken = default);

    /// <summary>Adds events inside <paramref name="transaction"/>, an open transaction on the store's
    /// database: they exist only if it commits. A transaction of another kind of database, or (where
    /// the store can tell) on another database, is refused with an <see cref="ArgumentException"/>
    /// whose parameter is <c>transaction</c>: events written elsewhere would never be relayed.</summary>
    ValueTask AddAsync(DbTransaction transaction, IReadOnlyList<OutboxMessage> messages, CancellationToken cancellationToken = default);

    /// <summary>Takes or keeps the relay's leadership for <paramref name="relayId"/>: true while this
    /// relay is the one that relays. Only the leader reads and removes events, so no two relays
    /// publish an event at once and a key's events leave in order. A relay that stops renewing (it
    /// crashed) loses the leadership (after <paramref name="lease"/> at the latest) and another takes over.</summary>
    ValueTask<bool> TryLeadAsync(string relayId, TimeSpan lease, CancellationToken cancellationToken = default);

    /// <summary>Gives the leadership up (a relay stopping cleanly), so another can take over at once.</summary>
    ValueTask ReleaseLeadAsync(string relayId, CancellationToken cancellationToken = default);

    /// <summary>Up to <paramref name="max"/> events due at <paramref name="nowMs"/>, in the order they
    /// were written, leaving out every event whose key has an older event not yet due (one waiting
    /// after a failed publish): a key's events go out in order, and a stuck one holds back only its own key.</summary>
    ValueTask<IReadOnlyList<OutboxMessage>> ReadDueAsync(int max, long nowMs, CancellationToken cancellationToken = default);

    /// <summary>Removes relayed events.</summary>
    ValueTask DeleteAsync(IReadOnlyList<long> ids, CancellationToken cancellationToken = default);

    /// <summary>Records a failed publish: the event is due again at <paramref name="dueMs"/>.</summary>
    ValueTask DeferAsync(long id, int attempts, long dueMs, string error, CancellationToken cancellationToken = default);

    /// <summary>Events waiting, the creation time of the oldest, and how many have failed at least
    /// <paramref name="stuckAttempts"/> times.</summary>
    ValueTask<OutboxStats> StatsAsync(int stuckAttempts, CancellationToken cancellationToken = default);

    /// <summary>Calls <paramref name="committed"/> whenever a transaction that added outbox events
    /// commits, in this process or another, until <paramref name="cancellationToken"/> is cancelled
    /// (PostgreSQL: LISTEN/NOTIFY). A store that cannot hear of other processes' commits returns at
    /// once; the relay then polls (<see cref="OutboxOptions.PollInterval"/>).</summary>
    Task ListenAsync(Action committed, CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>What the outbox holds: <see cref="OldestCreatedMs"/> is null when it is empty.</summary>
public readonly record struct OutboxStats(long Pending, long? OldestCreatedMs, long Stuck);
