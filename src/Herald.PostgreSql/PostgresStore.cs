using System.Data.Common;
using Herald.Inbox;
using Herald.Outbox;
using Herald.PostgreSql.Internal;
using Npgsql;
using NpgsqlTypes;

namespace Herald.PostgreSql;

/// <summary>Herald's outbox and inbox in a service's PostgreSQL database, beside its own tables, so
/// that state changes, outbox events and inbox entries commit together (through
/// <see cref="OpenConnectionAsync"/>'s connections, or any Npgsql transaction on the same database).
/// A commit that added outbox events announces itself with <c>NOTIFY</c>, so relays in every
/// process hear of it at once; the relay leader is whoever holds a session-level advisory lock,
/// which a crashed process's connection takes with it.</summary>
/// <remarks>
/// <para>The tables are <c>"schema"."{prefix}outbox"</c>, <c>"{prefix}inbox"</c> and
/// <c>"{prefix}schema"</c> (the version of the other two), created and migrated on start.</para>
/// <para>Leadership: each relay that asks (<see cref="TryLeadAsync"/>) gets a connection of its own,
/// outside the pool, that tries the lock; the leader's keeps it, and the relay's reads and removals
/// run on it, so a leader whose connection died reads and removes nothing more and its next
/// <see cref="TryLeadAsync"/> answers false (or takes the lock again on a new connection if no one
/// else has). The session is set to end itself when idle for the lease (PostgreSQL 14 and later:
/// <c>idle_session_timeout</c>), so a hung leader, or one cut off by the network, loses the lock
/// after the lease. What remains: when the leader's connection dies while a publish is in flight,
/// the new leader publishes those events again (the same events, with the same <c>ce_id</c>, which
/// consumers' inboxes absorb); none is lost, as the relay removes events only once the transport
/// has them.</para>
/// <para>Connection failures surface as <see cref="NpgsqlException"/>s; the relay and the pipeline
/// retry. A pooled connection whose server session has gone fails its next command, and Npgsql
/// then discards it.</para>
/// <para>NOTIFY makes committing transactions that carry it take a database-wide lock briefly at
/// commit, one after another: the price of waking relays at once.</para>
/// </remarks>
public sealed class PostgresStore : IOutboxStore, IInboxStore, IAsyncDisposable, IDisposable
{
    /// <summary>How long the listening connection may be silent before it is checked (a connection
    /// the network dropped silently would otherwise be waited on for ever).</summary>
    private static readonly TimeSpan ListenProbeInterval = TimeSpan.FromSeconds(15);

    private readonly PostgresSchema _tables;
    private readonly NpgsqlDataSource _pool;
    private readonly NpgsqlDataSource _leaderSource;
    private readonly NpgsqlDataSource _listenSource;
    private readonly RelayLeadership _leadership;
    private readonly SemaphoreSlim _initialize = new(1, 1);
    private volatile bool _initialized;

    private readonly string _insertSql;
    private readonly string _readDueSql;
    private readonly string _deleteSql;
    private readonly string _deferSql;
    private readonly string _statsSql;
    private readonly string _recordSql;
    private readonly string _purgeOldSql;
    private readonly string _excessSql;
    private readonly string _purgeOldestSql;

    /// <param name="connectionString">An Npgsql connection string, such as
    /// <c>Host=db;Database=orders;Username=orders;Password=...</c>. Its <c>Application Name</c>
    /// (default <c>herald</c>) followed by <c>/lead</c> and <c>/listen</c> names the relay's own
    /// connections in <c>pg_stat_activity</c>.</param>
    /// <param name="schema">The schema of Herald's tables, created if missing.</param>
    /// <param name="tablePrefix">Prefix of Herald's table names (<c>herald_outbox</c>, <c>herald_inbox</c>...).</param>
    public PostgresStore(string connectionString, string schema = "public", string tablePrefix = "herald_")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        _tables = new PostgresSchema(schema, tablePrefix);
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            throw new ArgumentException($"the connection string is not a valid Npgsql connection string: {e.Message}", nameof(connectionString), e);
        }
        var application = builder.ApplicationName is { Length: > 0 } name ? name : "herald";
        _pool = NpgsqlDataSource.Create(builder);
        _leaderSource = NpgsqlDataSource.Create(Dedicated(builder, application, "/lead"));
        _listenSource = NpgsqlDataSource.Create(Dedicated(builder, application, "/listen"));
        _leadership = new RelayLeadership(_leaderSource, _tables.RelayLockKey);

        var o = _tables.Outbox;
        var i = _tables.Inbox;
        // One statement for any number of events: the arrays unnest in order, and the ids follow it.
        _insertSql = $"""
            INSERT INTO {o} (topic, key, value, headers, header_count, created_ms)
            SELECT u.topic, u.key, u.value, u.headers, u.header_count, u.created_ms
            FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::bytea[], $5::integer[], $6::bigint[])
                WITH ORDINALITY AS u(topic, key, value, headers, header_count, created_ms, n)
            ORDER BY u.n
            """;
        // Keys held back: those with an event waiting after a failed publish, from the oldest such
        // event on (rare: the partial index on due_ms > 0 finds them without a scan). Without any,
        // the first branch reads the due rows in id order and stops at $2; with some, the second
        // skips the held keys' rows, looking at no more than ten batches' worth ($3) of due rows.
        // (One branch runs: each is gated by a one-time test of whether any key is held.)
        _readDueSql = $"""
            WITH held AS MATERIALIZED (
                SELECT topic, key, min(id) AS first_id FROM {o}
                WHERE due_ms > 0 AND due_ms > $1 AND key IS NOT NULL
                GROUP BY topic, key)
            (SELECT id, topic, key, value, headers, header_count, created_ms, attempts
             FROM {o} WHERE due_ms <= $1 AND NOT EXISTS (SELECT 1 FROM held)
             ORDER BY id LIMIT $2)
            UNION ALL
            (SELECT d.id, d.topic, d.key, d.value, d.headers, d.header_count, d.created_ms, d.attempts
             FROM (SELECT id, topic, key, value, headers, header_count, created_ms, attempts
                   FROM {o} WHERE due_ms <= $1 ORDER BY id LIMIT $3) AS d
             WHERE EXISTS (SELECT 1 FROM held)
               AND NOT EXISTS (SELECT 1 FROM held h WHERE h.topic = d.topic AND h.key = d.key AND h.first_id < d.id)
             ORDER BY d.id LIMIT $2)
            ORDER BY id
            """;
        _deleteSql = $"DELETE FROM {o} WHERE id = ANY($1)";
        _deferSql = $"UPDATE {o} SET attempts = $2, due_ms = $3, last_error = $4 WHERE id = $1";
        _statsSql = $"""
            SELECT (SELECT count(*) FROM {o}),
                   (SELECT created_ms FROM {o} ORDER BY id LIMIT 1),
                   (SELECT count(*) FROM {o} WHERE due_ms > 0 AND attempts >= $1)
            """;
        _recordSql = $"INSERT INTO {i} (grp, event_id, handled_ms) VALUES ($1, $2, $3) ON CONFLICT (grp, event_id) DO NOTHING";
        _purgeOldSql = $"""
            DELETE FROM {i} WHERE (grp, event_id) IN
                (SELECT grp, event_id FROM {i} WHERE handled_ms < $1 ORDER BY handled_ms LIMIT $2)
            """;
        // How many entries are beyond the newest $1, counting no more than $2 of them. Counting
        // reads the table, so it is skipped while the planner's estimate of the rows (kept by
        // autovacuum's analyze to within about a tenth) is under half of what may be kept.
        _excessSql = $"""
            SELECT CASE WHEN c.reltuples >= 1 AND c.reltuples < $1 / 2.0 THEN 0
                        ELSE (SELECT count(*) FROM (SELECT 1 FROM {i} OFFSET $1 LIMIT $2) AS x) END
            FROM pg_class c WHERE c.oid = $3::regclass
            """;
        _purgeOldestSql = $"""
            DELETE FROM {i} WHERE (grp, event_id) IN
                (SELECT grp, event_id FROM {i} ORDER BY handled_ms LIMIT $1)
            """;
    }

    private static NpgsqlConnectionStringBuilder Dedicated(NpgsqlConnectionStringBuilder builder, string application, string suffix) =>
        new(builder.ConnectionString)
        {
            // A session of its own: the leader's lock and the listener's LISTEN belong to it, and it
            // must close (not return to a pool) when it is done with.
            Pooling = false,
            Multiplexing = false,
            Enlist = false,
            ApplicationName = application[..Math.Min(application.Length, 63 - suffix.Length)] + suffix, // PostgreSQL keeps 63 bytes
        };

    public string Schema => _tables.Schema;

    public string TablePrefix => _tables.Prefix;

    /// <summary>The LISTEN/NOTIFY channel (for tests).</summary>
    internal string Channel => _tables.Channel;

    public async ValueTask InitializeAsync(CancellationToken cancellationToken = default)
    {
        if (_initialized) return;
        await _initialize.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_initialized) return;
            await using var connection = await _pool.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await _tables.MigrateAsync(connection, cancellationToken).ConfigureAwait(false);
            _initialized = true;
        }
        finally
        {
            _initialize.Release();
        }
    }

    /// <summary>An open connection from the store's pool (an <see cref="NpgsqlConnection"/>), the tables initialized.</summary>
    public async ValueTask<DbConnection> OpenConnectionAsync(CancellationToken cancellationToken = default) =>
        await OpenPooledAsync(cancellationToken).ConfigureAwait(false);

    private async ValueTask<NpgsqlConnection> OpenPooledAsync(CancellationToken cancellationToken)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        return await _pool.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Adds the events in <paramref name="transaction"/> (an open <see cref="NpgsqlTransaction"/>)
    /// with one statement, and announces them on the store's channel: listeners hear of them if,
    /// and once, the transaction commits.</summary>
    public async ValueTask AddAsync(DbTransaction transaction, IReadOnlyList<OutboxMessage> messages, CancellationToken cancellationToken = default)
    {
        var (connection, tx) = Own(transaction);
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0) return;
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        var n = messages.Count;
        var topics = new string[n];
        var keys = new byte[]?[n];
        var values = new byte[n][];
        var headers = new byte[n][];
        var counts = new int[n];
        var created = new long[n];
        for (var k = 0; k < n; k++)
        {
            var m = messages[k] ?? throw new ArgumentException($"messages[{k}] is null", nameof(messages));
            topics[k] = m.Topic;
            keys[k] = m.Key;
            values[k] = m.Value;
            headers[k] = m.Headers;
            counts[k] = m.HeaderCount;
            created[k] = m.CreatedMs;
        }
        await using var batch = new NpgsqlBatch(connection, tx);
        var insert = new NpgsqlBatchCommand(_insertSql);
        insert.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = topics });
        insert.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea, Value = keys });
        insert.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea, Value = values });
        insert.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea, Value = headers });
        insert.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = counts });
        insert.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = created });
        batch.BatchCommands.Add(insert);
        // Delivered at commit, and not at all on rollback; PostgreSQL folds a transaction's
        // identical notifications into one.
        var notify = new NpgsqlBatchCommand("SELECT pg_notify($1, '')");
        notify.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _tables.Channel });
        batch.BatchCommands.Add(notify);
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static (NpgsqlConnection, NpgsqlTransaction) Own(DbTransaction transaction)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        if (transaction is not NpgsqlTransaction tx)
            throw new ArgumentException($"the transaction must be an open Npgsql transaction (NpgsqlTransaction) on the store's database, not {transaction.GetType().FullName}", nameof(transaction));
        // Npgsql refuses one that has ended itself: InvalidOperationException ("Transaction is already
        // completed") once committed or rolled back, ObjectDisposedException once disposed.
        if (tx.Connection is not { } connection)
            throw new ArgumentException("the transaction has ended (committed or rolled back): pass an open one", nameof(transaction));
        return (connection, tx);
    }

    /// <summary>True while <paramref name="relayId"/>'s own connection holds the store's advisory
    /// lock: taken with <c>pg_try_advisory_lock</c> when free, kept while that session lives (a round
    /// trip checks it), taken again on a new connection when the old one has died and no one else
    /// took it meanwhile. The session ends itself when idle for <paramref name="lease"/>.</summary>
    public ValueTask<bool> TryLeadAsync(string relayId, TimeSpan lease, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(relayId);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(lease, TimeSpan.Zero);
        return _leadership.TryLeadAsync(relayId, lease, cancellationToken);
    }

    /// <summary>Unlocks and closes <paramref name="relayId"/>'s connection: another relay's next
    /// <see cref="TryLeadAsync"/> takes the lead.</summary>
    public ValueTask ReleaseLeadAsync(string relayId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(relayId);
        return _leadership.ReleaseLeadAsync(relayId, cancellationToken);
    }

    public async ValueTask<IReadOnlyList<OutboxMessage>> ReadDueAsync(int max, long nowMs, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(max);
        return await OnRelayConnectionAsync((Sql: _readDueSql, Max: max, Now: nowMs), static async (connection, s, ct) =>
        {
            await using var command = new NpgsqlCommand(s.Sql, connection);
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = s.Now });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = s.Max });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = s.Max * 10L });
            var due = new List<OutboxMessage>(Math.Min(s.Max, 1024));
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                due.Add(new OutboxMessage(
                    reader.GetInt64(0),
                    reader.GetString(1),
                    reader.IsDBNull(2) ? null : reader.GetFieldValue<byte[]>(2),
                    reader.GetFieldValue<byte[]>(3),
                    reader.GetFieldValue<byte[]>(4),
                    reader.GetInt32(5),
                    reader.GetInt64(6),
                    reader.GetInt32(7)));
            }
            return (IReadOnlyList<OutboxMessage>)due;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Removes the events with one statement.</summary>
    public async ValueTask DeleteAsync(IReadOnlyList<long> ids, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (ids.Count == 0) return;
        var array = new long[ids.Count];
        for (var k = 0; k < array.Length; k++) array[k] = ids[k];
        await OnRelayConnectionAsync((Sql: _deleteSql, Ids: array), static async (connection, s, ct) =>
        {
            await using var command = new NpgsqlCommand(s.Sql, connection);
            command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = s.Ids });
            return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DeferAsync(long id, int attempts, long dueMs, string error, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(error);
        // Text in PostgreSQL cannot hold U+0000.
        var text = error.Contains('\0', StringComparison.Ordinal) ? error.Replace('\0', '?') : error;
        await OnRelayConnectionAsync((Sql: _deferSql, Id: id, Attempts: attempts, Due: dueMs, Error: text), static async (connection, s, ct) =>
        {
            await using var command = new NpgsqlCommand(s.Sql, connection);
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = s.Id });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = s.Attempts });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = s.Due });
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = s.Error });
            return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs one of the relay's reads or removals on the leader's connection while a relay
    /// here leads (so that one whose lock has gone with its session can do nothing more), on a
    /// pooled connection otherwise.</summary>
    private async ValueTask<TResult> OnRelayConnectionAsync<TState, TResult>(TState state,
        Func<NpgsqlConnection, TState, CancellationToken, Task<TResult>> run, CancellationToken cancellationToken)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        var leader = await _leadership.EnterAsync(cancellationToken).ConfigureAwait(false);
        if (leader is not null)
        {
            try
            {
                return await run(leader, state, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _leadership.Exit(leader);
            }
        }
        await using var connection = await _pool.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        return await run(connection, state, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<OutboxStats> StatsAsync(int stuckAttempts, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenPooledAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(_statsSql, connection);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = stuckAttempts });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        return new OutboxStats(reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetInt64(1), reader.GetInt64(2));
    }

    /// <summary>LISTENs on the store's channel on a connection of its own and calls
    /// <paramref name="committed"/> for each announcement (and once as soon as it listens, for
    /// commits made before); returns when <paramref name="cancellationToken"/> is cancelled, and
    /// throws when the connection fails, so the relay listens again.</summary>
    public async Task ListenAsync(Action committed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(committed);
        try
        {
            await using var connection = await _listenSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            connection.Notification += (_, _) => committed();
            await using (var listen = new NpgsqlCommand($"LISTEN {PostgresSchema.Quote(_tables.Channel)}", connection))
                await listen.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            committed();
            while (true)
            {
                if (await connection.WaitAsync(ListenProbeInterval, cancellationToken).ConfigureAwait(false)) continue;
                await using var probe = new NpgsqlCommand("SELECT 1", connection);
                await probe.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped, as asked.
        }
    }

    /// <summary>Records the event in <paramref name="transaction"/> (an open <see cref="NpgsqlTransaction"/>):
    /// <c>INSERT ... ON CONFLICT DO NOTHING</c>. A transaction recording the same event at the same
    /// time waits for this one, and finds it recorded if this one commits.</summary>
    public async ValueTask<bool> TryRecordAsync(DbTransaction transaction, string group, string eventId, long nowMs, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(group);
        ArgumentException.ThrowIfNullOrEmpty(eventId);
        var (connection, tx) = Own(transaction);
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(_recordSql, connection, tx);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = group });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = eventId });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = nowMs });
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    public async ValueTask<long> PurgeAsync(long olderThanMs, long keep, int maxRows, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(keep);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRows);
        await using var connection = await OpenPooledAsync(cancellationToken).ConfigureAwait(false);
        long removed;
        await using (var old = new NpgsqlCommand(_purgeOldSql, connection))
        {
            old.Parameters.Add(new NpgsqlParameter<long> { TypedValue = olderThanMs });
            old.Parameters.Add(new NpgsqlParameter<int> { TypedValue = maxRows });
            removed = await old.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        if (removed == maxRows) return removed;
        long over;
        await using (var excess = new NpgsqlCommand(_excessSql, connection))
        {
            excess.Parameters.Add(new NpgsqlParameter<long> { TypedValue = keep });
            excess.Parameters.Add(new NpgsqlParameter<long> { TypedValue = maxRows - removed });
            excess.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _tables.Inbox });
            over = (long)(await excess.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
        if (over <= 0) return removed;
        await using var oldest = new NpgsqlCommand(_purgeOldestSql, connection);
        oldest.Parameters.Add(new NpgsqlParameter<long> { TypedValue = over });
        return removed + await oldest.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Closes the relay's connections (giving up its lock, if it leads) and the pool.</summary>
    public async ValueTask DisposeAsync()
    {
        await _leadership.DisposeAsync().ConfigureAwait(false);
        await _listenSource.DisposeAsync().ConfigureAwait(false);
        await _leaderSource.DisposeAsync().ConfigureAwait(false);
        await _pool.DisposeAsync().ConfigureAwait(false);
    }

    public void Dispose()
    {
        _leadership.Dispose();
        _listenSource.Dispose();
        _leaderSource.Dispose();
        _pool.Dispose();
    }
}
