using Herald.Dedupe;
using Microsoft.Data.Sqlite;

namespace Herald.Sqlite;

/// <summary>
/// A persistent <see cref="IDedupeStore"/> in a SQLite table, shared by every process that opens
/// the same database file: a mark survives restarts and is seen by all of them.
/// </summary>
/// <remarks>
/// <para>The table (<c>key TEXT PRIMARY KEY, expires_ms INTEGER</c>, in Unix milliseconds of the
/// <see cref="TimeProvider"/>'s wall clock) is created on first use, with the database in WAL mode.
/// Processes sharing it need clocks that agree to within the precision their time to live needs.
/// Keys compare exactly (SQLite's BINARY collation: case, spaces and Unicode forms all count).</para>
/// <para>A mark is one write transaction (<c>BEGIN IMMEDIATE</c>), so it is atomic across connections
/// and processes: of concurrent marks of one key, exactly one wins. Its time to live runs from when
/// the transaction holds the write lock, rounded up to a whole millisecond, and the mark holds
/// through its last millisecond, so it never expires early. The marks of one store take its write
/// slot in turn, waiting for it asynchronously: however many wait, at most one thread is blocked on
/// SQLite's lock.</para>
/// <para>Expired rows count as absent. Each mark also deletes up to two of them, soonest expired
/// first, so the table follows the live marks back down after a burst without any timer;
/// <see cref="PurgeExpiredAsync"/> deletes them in bounded batches for whoever wants it sooner.</para>
/// <para>Holds no connection between calls, so there is nothing to dispose; the pooled connections
/// belong to Microsoft.Data.Sqlite (<see cref="SqliteConnection.ClearAllPools"/>).</para>
/// </remarks>
public sealed class SqliteDedupeStore : IDedupeStore
{
    /// <summary>The most expired rows one <see cref="PurgeExpiredAsync"/> call deletes, and its default.</summary>
    public const int PurgeBatchSize = 10_000;

    // Expired rows each mark deletes: more than the one row a mark can add, so deletion outpaces
    // insertion and the table shrinks back to its live marks once a burst of new keys has expired.
    private const int SweepPerMark = 2;

    private const string DefaultTableName = "herald_dedupe";
    private const int MaxTableNameLength = 63;

    // How long a statement waits for another connection's write lock before failing.
    private const int BusyTimeoutMs = 30_000;
    private const int CommandTimeoutSeconds = BusyTimeoutMs / 1000;

    private readonly string _connectionString;
    private readonly TimeProvider _time;
    private readonly string _createSql;
    private readonly string _markSql;
    private readonly string _containsSql;
    private readonly string _deleteExpiredSql;
    private readonly SemaphoreSlim _createGate = new(1, 1);
    private volatile bool _created;

    // SQLite writes one transaction at a time, and Microsoft.Data.Sqlite waits for its write lock by
    // blocking the calling thread (its async methods run synchronously): concurrent marks would each
    // block a pool thread and starve the process. This store's writes take this slot first, waiting
    // asynchronously, so at most one of its threads waits on SQLite for other stores and processes.
    private readonly SemaphoreSlim _writer = new(1, 1);

    /// <summary>A store in table <paramref name="tableName"/> of the database that
    /// <paramref name="connectionString"/> opens.</summary>
    /// <param name="connectionString">A Microsoft.Data.Sqlite connection string naming a database file.</param>
    /// <param name="tableName">The table: a plain SQL identifier, <c>[A-Za-z_][A-Za-z0-9_]{0,62}</c>,
    /// not starting with <c>sqlite_</c>.</param>
    /// <param name="timeProvider">The clock; <see cref="TimeProvider.System"/> when null.</param>
    public SqliteDedupeStore(string connectionString, string tableName = DefaultTableName, TimeProvider? timeProvider = null)
    {
        _connectionString = ValidateConnectionString(connectionString);
        ValidateTableName(tableName);
        _time = timeProvider ?? TimeProvider.System;

        // The name is validated above, and quoted so that a keyword ("order") is a name too.
        string table = "\"" + tableName + "\"";
        // WITHOUT ROWID: the text key is the primary key's b-tree itself, not a second index beside
        // a rowid table. The expiry index lets a purge find expired rows without scanning the table
        // while it holds the write lock.
        _createSql =
            $"CREATE TABLE IF NOT EXISTS {table} (\"key\" TEXT NOT NULL PRIMARY KEY, expires_ms INTEGER NOT NULL) WITHOUT ROWID;" +
            $"CREATE INDEX IF NOT EXISTS \"{tableName}_expires\" ON {table} (expires_ms);";
        // A mark is live while expires_ms >= now (its last millisecond included) and expired once
        // expires_ms < now. The upsert inserts an absent key, renews an expired one, and leaves a
        // live one alone (its expiry too), in which case no row changes.
        _markSql =
            $"INSERT INTO {table} (\"key\", expires_ms) VALUES ($key, $expires) " +
            $"ON CONFLICT (\"key\") DO UPDATE SET expires_ms = excluded.expires_ms WHERE {table}.expires_ms < $now;";
        _containsSql = $"SELECT 1 FROM {table} WHERE \"key\" = $key AND expires_ms >= $now;";
        // Walks the expiry index from its oldest end, so the statement reads only what it deletes.
        _deleteExpiredSql =
            $"DELETE FROM {table} WHERE \"key\" IN " +
            $"(SELECT \"key\" FROM {table} WHERE expires_ms < $now ORDER BY expires_ms LIMIT $limit);";
    }

    /// <inheritdoc />
    public ValueTask<bool> TryMarkAsync(string key, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (ttl <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(ttl), ttl, "The time to live of a dedupe mark must be positive");
        return TryMarkCoreAsync(key, ttl, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask<bool> ContainsAsync(string key, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        return ContainsCoreAsync(key, cancellationToken);
    }

    /// <summary>Deletes expired marks, at most <paramref name="maxRows"/> of them, soonest expired
    /// first, in one short write transaction; returns how many. Call again while it returns
    /// <paramref name="maxRows"/>. Live marks are never touched.</summary>
    /// <param name="maxRows">The most rows this call deletes: 1 to <see cref="PurgeBatchSize"/>, which
    /// bounds how long it holds the database's write lock.</param>
    /// <param name="cancellationToken">Cancels the call; nothing is deleted then.</param>
    public ValueTask<int> PurgeExpiredAsync(int maxRows = PurgeBatchSize, CancellationToken cancellationToken = default)
    {
        if (maxRows is < 1 or > PurgeBatchSize)
            throw new ArgumentOutOfRangeException(nameof(maxRows), maxRows, $"SqliteDedupeStore purges 1 to {PurgeBatchSize} rows per call");
        return PurgeCoreAsync(maxRows, cancellationToken);
    }

    private async ValueTask<int> PurgeCoreAsync(int maxRows, CancellationToken cancellationToken)
    {
        await _writer.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using SqliteConnection connection = await OpenAsync(cancellationToken);
            await using SqliteCommand command = Command(connection, _deleteExpiredSql);
            command.Parameters.AddWithValue("$now", NowMs());
            command.Parameters.AddWithValue("$limit", maxRows);
            return await command.ExecuteNonQueryAsync(cancellationToken);
        }
        finally
        {
            _writer.Release();
        }
    }

    private async ValueTask<bool> TryMarkCoreAsync(string key, TimeSpan ttl, CancellationToken cancellationToken)
    {
        await _writer.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await MarkAsync(key, ttl, cancellationToken);
        }
        finally
        {
            _writer.Release();
        }
    }

    private async ValueTask<bool> MarkAsync(string key, TimeSpan ttl, CancellationToken cancellationToken)
    {
        await using SqliteConnection connection = await OpenAsync(cancellationToken);
        // BEGIN IMMEDIATE takes the write lock first, waiting for it through the busy handler, and
        // the clock is read after: a mark that waited behind other writers still gets its whole time
        // to live, and the mark and the sweep commit together (one commit, one WAL sync).
        await using SqliteTransaction transaction = connection.BeginTransaction(deferred: false);
        long now = NowMs();
        int changed;
        await using (SqliteCommand mark = Command(connection, _markSql, transaction))
        {
            mark.Parameters.AddWithValue("$key", key);
            mark.Parameters.AddWithValue("$expires", ExpiresMs(now, ttl));
            mark.Parameters.AddWithValue("$now", now);
            changed = await mark.ExecuteNonQueryAsync(cancellationToken);
        }
        await using (SqliteCommand sweep = Command(connection, _deleteExpiredSql, transaction))
        {
            sweep.Parameters.AddWithValue("$now", now);
            sweep.Parameters.AddWithValue("$limit", SweepPerMark);
            await sweep.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        return changed == 1;
    }

    private async ValueTask<bool> ContainsCoreAsync(string key, CancellationToken cancellationToken)
    {
        await using SqliteConnection connection = await OpenAsync(cancellationToken);
        await using SqliteCommand command = Command(connection, _containsSql);
        command.Parameters.AddWithValue("$key", key);
        command.Parameters.AddWithValue("$now", NowMs());
        return await command.ExecuteScalarAsync(cancellationToken) is not null;
    }

    private async ValueTask<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            // Per connection, and a pooled one may be new: SQLite's own busy handler waits for a
            // writer in short steps, where Microsoft.Data.Sqlite's retry sleeps 150 ms at a time.
            await using (SqliteCommand busy = Command(connection, $"PRAGMA busy_timeout = {BusyTimeoutMs};"))
                await busy.ExecuteNonQueryAsync(cancellationToken);
            if (!_created) await CreateTableAsync(connection, cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    private async ValueTask CreateTableAsync(SqliteConnection connection, CancellationToken cancellationToken)
    {
        await _createGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_created) return;
            // WAL is a property of the database file and persists: readers do not block the writer.
            await using (SqliteCommand wal = Command(connection, "PRAGMA journal_mode = WAL;"))
                await wal.ExecuteNonQueryAsync(cancellationToken);
            await using (SqliteCommand create = Command(connection, _createSql))
                await create.ExecuteNonQueryAsync(cancellationToken);
            _created = true;
        }
        finally
        {
            _createGate.Release();
        }
    }

    private static SqliteCommand Command(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        command.CommandTimeout = CommandTimeoutSeconds;
        return command;
    }

    private long NowMs() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Now plus the time to live rounded up to a whole millisecond, saturating rather than
    /// overflowing. With now truncated to its millisecond and the mark live through expires_ms, it
    /// expires at least the time to live after it was made, and at most a millisecond later.</summary>
    private static long ExpiresMs(long nowMs, TimeSpan ttl)
    {
        long ttlMs = ttl.Ticks / TimeSpan.TicksPerMillisecond + (ttl.Ticks % TimeSpan.TicksPerMillisecond == 0 ? 0 : 1);
        return nowMs > long.MaxValue - ttlMs ? long.MaxValue : nowMs + ttlMs;
    }

    private static string ValidateConnectionString(string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        SqliteConnectionStringBuilder builder;
        try
        {
            builder = new SqliteConnectionStringBuilder(connectionString);
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            throw new ArgumentException($"SqliteDedupeStore connection string is invalid: {e.Message}", nameof(connectionString), e);
        }

        // Every call opens its own connection: a private in-memory or temporary database would be a
        // new, empty one each time.
        if (builder.Mode == SqliteOpenMode.Memory || builder.DataSource.Length == 0 || builder.DataSource == ":memory:")
            throw new ArgumentException(
                $"SqliteDedupeStore needs a database file, but the connection string's Data Source is '{builder.DataSource}' with Mode={builder.Mode}",
                nameof(connectionString));
        if (builder.Mode == SqliteOpenMode.ReadOnly)
            throw new ArgumentException("SqliteDedupeStore writes its marks, but the connection string has Mode=ReadOnly", nameof(connectionString));
        return builder.ToString();
    }

    private static void ValidateTableName(string tableName)
    {
        ArgumentNullException.ThrowIfNull(tableName);
        if (!IsPlainIdentifier(tableName) || tableName.StartsWith("sqlite_", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException(
                $"SqliteDedupeStore table name '{tableName}' is not a plain SQL identifier: " +
                $"a letter or '_', then up to {MaxTableNameLength - 1} letters, digits or '_', not starting with 'sqlite_'",
                nameof(tableName));
    }

    private static bool IsPlainIdentifier(string name)
    {
        if (name.Length is 0 or > MaxTableNameLength || !(char.IsAsciiLetter(name[0]) || name[0] == '_')) return false;
        foreach (char c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '_')) return false;
        }
        return true;
    }
}
