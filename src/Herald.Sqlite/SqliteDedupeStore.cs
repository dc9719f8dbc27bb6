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
/// Processes sharing it need clocks that agree to within the precision their time to live needs.</para>
/// <para>Each call opens a pooled connection and runs one statement, so a mark is atomic across
/// connections and processes. Expired rows count as absent; <see cref="PurgeExpiredAsync"/> deletes
/// them, a bounded batch per call.</para>
/// <para>Holds no connection between calls, so there is nothing to dispose; the pooled connections
/// belong to Microsoft.Data.Sqlite (<see cref="SqliteConnection.ClearAllPools"/>).</para>
/// </remarks>
public sealed class SqliteDedupeStore : IDedupeStore
{
    /// <summary>The most expired rows one <see cref="PurgeExpiredAsync"/> call deletes.</summary>
    public const int PurgeBatchSize = 10_000;

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
    private readonly string _purgeSql;
    private readonly SemaphoreSlim _createGate = new(1, 1);
    private volatile bool _created;

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
        // One statement, so atomic: inserts an absent key, renews an expired one, and leaves a live
        // one alone, in which case no row changes.
        _markSql =
            $"INSERT INTO {table} (\"key\", expires_ms) VALUES ($key, $expires) " +
            $"ON CONFLICT (\"key\") DO UPDATE SET expires_ms = excluded.expires_ms WHERE {table}.expires_ms <= $now;";
        _containsSql = $"SELECT 1 FROM {table} WHERE \"key\" = $key AND expires_ms > $now;";
        _purgeSql =
            $"DELETE FROM {table} WHERE \"key\" IN " +
            $"(SELECT \"key\" FROM {table} WHERE expires_ms <= $now ORDER BY expires_ms LIMIT {PurgeBatchSize});";
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

    /// <summary>Deletes expired marks, at most <see cref="PurgeBatchSize"/> of them, soonest expired
    /// first; returns how many. Call again while it returns <see cref="PurgeBatchSize"/>.</summary>
    public async ValueTask<int> PurgeExpiredAsync(CancellationToken cancellationToken = default)
    {
        await using SqliteConnection connection = await OpenAsync(cancellationToken);
        await using SqliteCommand command = Command(connection, _purgeSql);
        command.Parameters.AddWithValue("$now", NowMs());
        return await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private async ValueTask<bool> TryMarkCoreAsync(string key, TimeSpan ttl, CancellationToken cancellationToken)
    {
        await using SqliteConnection connection = await OpenAsync(cancellationToken);
        long now = NowMs();
        await using SqliteCommand command = Command(connection, _markSql);
        command.Parameters.AddWithValue("$key", key);
        command.Parameters.AddWithValue("$expires", ExpiresMs(now, ttl));
        command.Parameters.AddWithValue("$now", now);
        return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
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
        await _createGate.WaitAsync(cancellationToken);
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

    private static SqliteCommand Command(SqliteConnection connection, string sql)
    {
        SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.CommandTimeout = CommandTimeoutSeconds;
        return command;
    }

    private long NowMs() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Now plus the time to live rounded up to a whole millisecond (a mark never expires
    /// early), saturating rather than overflowing.</summary>
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
