using System.Data.Common;
using Herald.Inbox;
using Herald.Outbox;
using Herald.Sqlite.Internal;
using Microsoft.Data.Sqlite;

namespace Herald.Sqlite;

/// <summary>Herald's outbox and inbox in a service's SQLite database (WAL mode): the same file as
/// the service's own tables, so that state changes, outbox events and inbox entries commit
/// together. SQLite has one writer at a time: transactions begin IMMEDIATE (they take the write
/// lock at once, waiting for it, so that two never deadlock upgrading a read), and a relay lease in
/// a table keeps a second process from relaying the same events.</summary>
public sealed class SqliteStore : IOutboxStore, IInboxStore
{
    private readonly string _connectionString;
    private readonly string _p;
    private readonly string _path; // the database file, in full
    private readonly SemaphoreSlim _initialize = new(1, 1);
    private volatile bool _initialized;

    /// <param name="connectionString">A Microsoft.Data.Sqlite connection string, such as
    /// <c>Data Source=orders.db</c>.</param>
    /// <param name="tablePrefix">Prefix of Herald's table names (<c>herald_outbox</c>, <c>herald_inbox</c>...).</param>
    public SqliteStore(string connectionString, string tablePrefix = "herald_")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        var builder = new SqliteConnectionStringBuilder(connectionString);
        if (builder.Mode == SqliteOpenMode.Memory || builder.DataSource is "" or ":memory:")
            throw new ArgumentException("the outbox needs a database file: an in-memory SQLite database is gone with its last connection", nameof(connectionString));
        _connectionString = builder.ToString();
        _path = Path.GetFullPath(builder.DataSource);
        _p = SqliteSchema.CheckPrefix(tablePrefix);
    }

    public string TablePrefix => _p;

    public async ValueTask InitializeAsync(CancellationToken cancellationToken = default)
    {
        if (_initialized) return;
        await _initialize.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_initialized) return;
            await using var connection = new SqliteConnection(_connectionString);
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await SqliteSchema.MigrateAsync(connection, _p, cancellationToken).ConfigureAwait(false);
            _initialized = true;
        }
        finally
        {
            _initialize.Release();
        }
    }

    // SQLite writes one transaction at a time, and Microsoft.Data.Sqlite waits for its write lock
    // by blocking the calling thread: dozens of handlers each blocking a pool thread starved the
    // process (OrderFlow: progress lines a second apart). Connections for writing take this slot
    // first, waiting asynchronously, and give it back when they close.
    private readonly SemaphoreSlim _writer = new(1, 1);

    /// <summary>An open connection for a transaction that writes: it holds the database's one write
    /// slot in this process until it is closed or disposed (others wait for it without blocking a
    /// thread), so do not open a second one while holding one.</summary>
    public async ValueTask<DbConnection> OpenConnectionAsync(CancellationToken cancellationToken = default)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        await _writer.WaitAsync(cancellationToken).ConfigureAwait(false);
        var connection = new SqliteConnection(_connectionString);
        var slot = new WriteSlot(_writer);
        connection.StateChange += (_, e) =>
        {
            if (e.CurrentState == System.Data.ConnectionState.Closed) slot.Release();
        };
        connection.Disposed += (_, _) => slot.Release();
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            slot.Release();
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private sealed class WriteSlot(SemaphoreSlim writer)
    {
        private int _released;

        public void Release()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) writer.Release();
        }
    }

    /// <summary>A connection for reading only: WAL readers neither wait for the writer nor hold it up.</summary>
    private async ValueTask<SqliteConnection> OpenReaderAsync(CancellationToken cancellationToken)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask AddAsync(DbTransaction transaction, IReadOnlyList<OutboxMessage> messages, CancellationToken cancellationToken = default)
    {
        var (connection, tx) = Own(transaction);
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.Transaction = tx;
        command.CommandText = $"INSERT INTO {_p}outbox (topic, key, value, headers, header_count, created_ms) VALUES ($topic, $key, $value, $headers, $count, $created)";
        var topic = command.Parameters.Add("$topic", SqliteType.Text);
        var key = command.Parameters.Add("$key", SqliteType.Blob);
        var value = command.Parameters.Add("$value", SqliteType.Blob);
        var headers = command.Parameters.Add("$headers", SqliteType.Blob);
        var count = command.Parameters.Add("$count", SqliteType.Integer);
        var created = command.Parameters.Add("$created", SqliteType.Integer);
        foreach (var m in messages)
        {
            topic.Value = m.Topic;
            key.Value = (object?)m.Key ?? DBNull.Value;
            value.Value = m.Value;
            headers.Value = m.Headers;
            count.Value = m.HeaderCount;
            created.Value = m.CreatedMs;
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private (SqliteConnection, SqliteTransaction) Own(DbTransaction transaction)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        if (transaction is not SqliteTransaction tx || tx.Connection is not { } connection)
            throw new ArgumentException($"the transaction must be an open Microsoft.Data.Sqlite transaction on the outbox's database, not {transaction.GetType().FullName}", nameof(transaction));
        // Events written into another file would never be relayed.
        if (!string.Equals(Path.GetFullPath(connection.DataSource), _path, StringComparison.Ordinal))
            throw new ArgumentException($"the transaction is on the database '{connection.DataSource}', not the outbox's '{_path}'", nameof(transaction));
        return (connection, tx);
    }

    public async ValueTask<bool> TryLeadAsync(string relayId, TimeSpan lease, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(relayId);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await using var connection = (SqliteConnection)await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = $"""
            INSERT INTO {_p}outbox_lease (name, owner, until_ms) VALUES ('relay', $owner, $until)
            ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms
            WHERE {_p}outbox_lease.owner = excluded.owner OR {_p}outbox_lease.until_ms < $now
            """;
        command.Parameters.AddWithValue("$owner", relayId);
        command.Parameters.AddWithValue("$until", now + (long)lease.TotalMilliseconds);
        command.Parameters.AddWithValue("$now", now);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
    }

    public async ValueTask ReleaseLeadAsync(string relayId, CancellationToken cancellationToken = default)
    {
        await using var connection = (SqliteConnection)await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = $"DELETE FROM {_p}outbox_lease WHERE name = 'relay' AND owner = $owner";
        command.Parameters.AddWithValue("$owner", relayId);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<IReadOnlyList<OutboxMessage>> ReadDueAsync(int max, long nowMs, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(max);
        await using var connection = await OpenReaderAsync(cancellationToken).ConfigureAwait(false);
        // Keys held back: those with an event waiting after a failed publish (rare: the partial
        // index on due_ms > 0 finds them without a scan), from their oldest such event on.
        var held = new Dictionary<(string, string), long>();
        await using (var deferred = connection.CreateCommand())
        {
            deferred.CommandText = HeldKeysSql(_p);
            deferred.Parameters.AddWithValue("$now", nowMs);
            await using var reader = await deferred.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                held[(reader.GetString(0), Convert.ToHexString((byte[])reader[1]))] = reader.GetInt64(2);
        }
        var due = new List<OutboxMessage>(Math.Min(max, 1024));
        await using var read = connection.CreateCommand();
        read.CommandText = $"SELECT id, topic, key, value, headers, header_count, created_ms, attempts FROM {_p}outbox WHERE id > $after AND due_ms <= $now ORDER BY id LIMIT $limit";
        var after = read.Parameters.AddWithValue("$after", 0L);
        read.Parameters.AddWithValue("$now", nowMs);
        read.Parameters.AddWithValue("$limit", max);
        // Events of held keys are skipped: read on past them, but not without end (ten batches).
        for (var page = 0; page < 10 && due.Count < max; page++)
        {
            var rows = 0;
            await using (var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    rows++;
                    var id = reader.GetInt64(0);
                    after.Value = id;
                    var topic = reader.GetString(1);
                    var key = reader.IsDBNull(2) ? null : (byte[])reader[2];
                    if (key is not null && held.Count > 0 && held.TryGetValue((topic, Convert.ToHexString(key)), out var from) && from < id) continue;
                    if (due.Count < max)
                        due.Add(new OutboxMessage(id, topic, key, (byte[])reader[3], (byte[])reader[4], reader.GetInt32(5), reader.GetInt64(6), reader.GetInt32(7)));
                }
            }
            if (rows < max || held.Count == 0) break;
        }
        return due;
    }

    /// <summary>The keys held back and the oldest waiting event of each. "due_ms > 0" lets SQLite
    /// use the partial index of deferred events: with "due_ms > $now" alone it cannot tell that the
    /// index applies, and scanned the whole outbox every round.</summary>
    internal static string HeldKeysSql(string prefix) =>
        $"SELECT topic, key, MIN(id) FROM {prefix}outbox WHERE due_ms > 0 AND due_ms > $now AND key IS NOT NULL GROUP BY topic, key";

    public async ValueTask DeleteAsync(IReadOnlyList<long> ids, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (ids.Count == 0) return;
        await using var connection = (SqliteConnection)await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        // One statement per run of consecutive ids (a round relays runs of them, broken only by the
        // events of held-back keys): the ids between a run's ends are all in it (outbox benchmark:
        // a statement per id was a third of the relay's time).
        command.CommandText = $"DELETE FROM {_p}outbox WHERE id BETWEEN $from AND $to";
        var from = command.Parameters.Add("$from", SqliteType.Integer);
        var to = command.Parameters.Add("$to", SqliteType.Integer);
        var sorted = ids.Order().ToArray();
        for (var i = 0; i < sorted.Length;)
        {
            var j = i;
            while (j + 1 < sorted.Length && sorted[j + 1] == sorted[j] + 1) j++;
            from.Value = sorted[i];
            to.Value = sorted[j];
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            i = j + 1;
        }
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DeferAsync(long id, int attempts, long dueMs, string error, CancellationToken cancellationToken = default)
    {
        await using var connection = (SqliteConnection)await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = $"UPDATE {_p}outbox SET attempts = $attempts, due_ms = $due, last_error = $error WHERE id = $id";
        command.Parameters.AddWithValue("$attempts", attempts);
        command.Parameters.AddWithValue("$due", dueMs);
        command.Parameters.AddWithValue("$error", error);
        command.Parameters.AddWithValue("$id", id);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<OutboxStats> StatsAsync(int stuckAttempts, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenReaderAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = $"""
            SELECT COUNT(*), (SELECT created_ms FROM {_p}outbox ORDER BY id LIMIT 1),
                   (SELECT COUNT(*) FROM {_p}outbox WHERE due_ms > 0 AND attempts >= $stuck)
            FROM {_p}outbox
            """;
        command.Parameters.AddWithValue("$stuck", stuckAttempts);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        return new OutboxStats(reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetInt64(1), reader.GetInt64(2));
    }

    public async ValueTask<bool> TryRecordAsync(DbTransaction transaction, string group, string eventId, long nowMs, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(group);
        ArgumentException.ThrowIfNullOrEmpty(eventId);
        var (connection, tx) = Own(transaction);
        await using var command = connection.CreateCommand();
        command.Transaction = tx;
        command.CommandText = $"INSERT INTO {_p}inbox (grp, event_id, handled_ms) VALUES ($group, $id, $now) ON CONFLICT (grp, event_id) DO NOTHING";
        command.Parameters.AddWithValue("$group", group);
        command.Parameters.AddWithValue("$id", eventId);
        command.Parameters.AddWithValue("$now", nowMs);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    public async ValueTask<long> PurgeAsync(long olderThanMs, long keep, int maxRows, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(keep);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRows);
        await using var connection = (SqliteConnection)await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var old = connection.CreateCommand();
        old.CommandText = $"""
            DELETE FROM {_p}inbox WHERE (grp, event_id) IN
                (SELECT grp, event_id FROM {_p}inbox WHERE handled_ms < $before ORDER BY handled_ms LIMIT $max)
            """;
        old.Parameters.AddWithValue("$before", olderThanMs);
        old.Parameters.AddWithValue("$max", maxRows);
        long removed = await old.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        if (removed == maxRows) return removed;
        await using var count = connection.CreateCommand();
        count.CommandText = $"SELECT COUNT(*) FROM {_p}inbox";
        var over = (long)(await count.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))! - keep;
        if (over <= 0) return removed;
        await using var oldest = connection.CreateCommand();
        oldest.CommandText = $"""
            DELETE FROM {_p}inbox WHERE (grp, event_id) IN
                (SELECT grp, event_id FROM {_p}inbox ORDER BY handled_ms LIMIT $max)
            """;
        oldest.Parameters.AddWithValue("$max", Math.Min(over, maxRows - removed));
        return removed + await oldest.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
