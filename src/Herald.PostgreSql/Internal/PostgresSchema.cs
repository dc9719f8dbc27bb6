using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Npgsql;

namespace Herald.PostgreSql.Internal;

/// <summary>Herald's tables in a PostgreSQL schema, created and migrated on start: each migration
/// runs once, in one transaction with the version it brings, under a transaction-scoped advisory
/// lock, so that processes starting at once take turns and the later ones find the work done.</summary>
internal sealed class PostgresSchema
{
    /// <summary>The migrations in order; version n is the n-th.</summary>
    private static readonly Func<PostgresSchema, string>[] Migrations =
    [
        s => $"""
            CREATE TABLE {s.Outbox} (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                topic text NOT NULL,
                key bytea,
                value bytea NOT NULL,
                headers bytea NOT NULL,
                header_count integer NOT NULL,
                created_ms bigint NOT NULL,
                attempts integer NOT NULL DEFAULT 0,
                due_ms bigint NOT NULL DEFAULT 0,
                last_error text);
            CREATE INDEX {Quote(s.Prefix + "outbox_deferred")} ON {s.Outbox} (due_ms) WHERE due_ms > 0;
            CREATE TABLE {s.Inbox} (
                grp text NOT NULL,
                event_id text NOT NULL,
                handled_ms bigint NOT NULL,
                PRIMARY KEY (grp, event_id));
            CREATE INDEX {Quote(s.Prefix + "inbox_handled")} ON {s.Inbox} (handled_ms);
            """,
    ];

    public PostgresSchema(string schema, string tablePrefix)
    {
        Schema = CheckIdentifier(schema, 63, "schema name", nameof(schema));
        Prefix = CheckIdentifier(tablePrefix, 40, "table prefix", nameof(tablePrefix));
        Outbox = Table("outbox");
        Inbox = Table("inbox");
        Versions = Table("schema");
        var channel = $"{schema}.{tablePrefix}outbox";
        Channel = channel.Length <= 63 ? channel : $"herald_outbox_{(ulong)Key("channel"):x16}";
        RelayLockKey = Key("relay");
        MigrationLockKey = Key("migrate");
    }

    public static int LatestVersion => Migrations.Length;

    public string Schema { get; }

    public string Prefix { get; }

    /// <summary>Quoted, schema-qualified table names, ready for SQL.</summary>
    public string Outbox { get; }

    public string Inbox { get; }

    public string Versions { get; }

    /// <summary>The LISTEN/NOTIFY channel on which commits that added outbox events are announced
    /// (a plain string for pg_notify; <see cref="Quote"/> it for LISTEN).</summary>
    public string Channel { get; }

    /// <summary>The session-level advisory lock whose holder is the relay leader for these tables.</summary>
    public long RelayLockKey { get; }

    /// <summary>The transaction-level advisory lock migrations take (per schema: creating the schema
    /// itself is part of the first).</summary>
    public long MigrationLockKey { get; }

    private string Table(string name) => $"{Quote(Schema)}.{Quote(Prefix + name)}";

    /// <summary>A stable 64-bit key for this schema and prefix: advisory locks are per database, so
    /// each set of Herald tables needs its own.</summary>
    private long Key(string purpose)
    {
        var text = purpose == "migrate" ? $"herald/{purpose}/{Schema}" : $"herald/{purpose}/{Schema}/{Prefix}";
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(text), hash);
        return BinaryPrimitives.ReadInt64BigEndian(hash);
    }

    public static string Quote(string identifier) => $"\"{identifier}\"";

    /// <summary>Letters, digits and underscores, starting with a letter or underscore, so that it
    /// can be quoted into SQL as it is (quoted, its case is kept).</summary>
    private static string CheckIdentifier(string value, int maxLength, string what, string parameter)
    {
        ArgumentNullException.ThrowIfNull(value, parameter);
        var ok = value.Length > 0 && value.Length <= maxLength && (char.IsAsciiLetter(value[0]) || value[0] == '_');
        foreach (var c in value) ok &= char.IsAsciiLetterOrDigit(c) || c == '_';
        if (!ok) throw new ArgumentException($"the {what} '{value}' must be 1 to {maxLength} letters, digits or underscores, starting with a letter or underscore", parameter);
        return value;
    }

    /// <summary>Brings the tables to <see cref="LatestVersion"/>, creating the schema if it is missing.</summary>
    public async Task MigrateAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        while (true)
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            // Held until this transaction ends: a second process migrating at once waits here and
            // then sees the first one's version.
            await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock($1)", connection, transaction))
            {
                lockCommand.Parameters.Add(new NpgsqlParameter<long> { TypedValue = MigrationLockKey });
                await lockCommand.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            // Looked up rather than CREATE SCHEMA IF NOT EXISTS, which needs the CREATE privilege on
            // the database even when the schema exists.
            bool exists;
            await using (var find = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", connection, transaction))
            {
                find.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Schema });
                exists = (bool)(await find.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
            }
            if (!exists) await ExecuteAsync(connection, transaction, $"CREATE SCHEMA {Quote(Schema)}", cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, transaction, $"CREATE TABLE IF NOT EXISTS {Versions} (component text PRIMARY KEY, version integer NOT NULL)", cancellationToken).ConfigureAwait(false);
            int version;
            await using (var read = new NpgsqlCommand($"SELECT version FROM {Versions} WHERE component = 'stores'", connection, transaction))
                version = await read.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is int v ? v : 0;
            if (version > LatestVersion)
                throw new InvalidOperationException($"the database's Herald tables ({Schema}.{Prefix}*) are at version {version}, newer than this Herald knows ({LatestVersion}); upgrade Herald");
            if (version == LatestVersion)
            {
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                return;
            }
            await ExecuteAsync(connection, transaction, Migrations[version](this), cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, transaction,
                $"INSERT INTO {Versions} (component, version) VALUES ('stores', {version + 1}) ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
