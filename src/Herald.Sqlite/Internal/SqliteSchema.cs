using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Herald.Sqlite.Internal;

/// <summary>Herald's tables in a SQLite database, created and migrated on start: each migration
/// runs once, in one transaction with the version it brings, so starting several processes at
/// once or again and again changes nothing twice.</summary>
internal static class SqliteSchema
{
    /// <summary>The migrations in order; version n is the n-th. Table names use the prefix.</summary>
    private static readonly Func<string, string>[] Migrations =
    [
        p => $"""
            CREATE TABLE {p}outbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                topic TEXT NOT NULL,
                key BLOB,
                value BLOB NOT NULL,
                headers BLOB NOT NULL,
                header_count INTEGER NOT NULL,
                created_ms INTEGER NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                due_ms INTEGER NOT NULL DEFAULT 0,
                last_error TEXT);
            CREATE INDEX {p}outbox_deferred ON {p}outbox (due_ms) WHERE due_ms > 0;
            CREATE TABLE {p}outbox_lease (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until_ms INTEGER NOT NULL);
            CREATE TABLE {p}inbox (
                grp TEXT NOT NULL,
                event_id TEXT NOT NULL,
                handled_ms INTEGER NOT NULL,
                PRIMARY KEY (grp, event_id)) WITHOUT ROWID;
            CREATE INDEX {p}inbox_handled ON {p}inbox (handled_ms);
            """,
    ];

    public static int LatestVersion => Migrations.Length;

    public static async Task MigrateAsync(SqliteConnection connection, string prefix, CancellationToken cancellationToken)
    {
        // WAL: readers do not block the writer (the relay reads while handlers write). The mode is
        // kept in the file; setting it needs no transaction.
        await ExecuteAsync(connection, null, "PRAGMA journal_mode=WAL;", cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, null, $"CREATE TABLE IF NOT EXISTS {prefix}schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL);", cancellationToken).ConfigureAwait(false);
        while (true)
        {
            // BEGIN IMMEDIATE: two processes migrating at once take turns, and the second sees the first's version.
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using var read = connection.CreateCommand();
            read.Transaction = transaction;
            read.CommandText = $"SELECT version FROM {prefix}schema WHERE component = 'stores'";
            var version = await read.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long v ? (int)v : 0;
            if (version > LatestVersion)
                throw new InvalidOperationException($"the database's Herald tables ({prefix}*) are at version {version}, newer than this Herald knows ({LatestVersion}); upgrade Herald");
            if (version == LatestVersion) return;
            await ExecuteAsync(connection, transaction, Migrations[version](prefix), cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, transaction,
                $"INSERT INTO {prefix}schema (component, version) VALUES ('stores', {version + 1}) ON CONFLICT (component) DO UPDATE SET version = excluded.version;",
                cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task ExecuteAsync(SqliteConnection connection, DbTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = (SqliteTransaction?)transaction;
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Checks a table prefix: letters, digits and underscores, starting with a letter or
    /// underscore, so it can be put into SQL as it is.</summary>
    public static string CheckPrefix(string prefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        var ok = prefix.Length is > 0 and <= 40 && (char.IsAsciiLetter(prefix[0]) || prefix[0] == '_');
        foreach (var c in prefix) ok &= char.IsAsciiLetterOrDigit(c) || c == '_';
        if (!ok) throw new ArgumentException($"the table prefix '{prefix}' must be 1 to 40 letters, digits or underscores, starting with a letter or underscore", nameof(prefix));
        return prefix;
    }
}
