using System.Data.Common;
using Herald;
using Herald.PostgreSql;
using Herald.Sqlite;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace OrderFlow.Services;

/// <summary>A service's own database: a SQLite file in the run's data directory by default (or a
/// schema of a PostgreSQL database with --postgres). It holds the service's tables and Herald's
/// outbox and inbox beside them, so that a handler's state change, the events it publishes and the
/// id of the event it handled commit in one transaction.</summary>
public abstract class ServiceDatabase
{
    protected ServiceDatabase(string service) => Service = service;

    /// <summary>The service whose database this is ("shop", "inventory", ...).</summary>
    public string Service { get; }

    /// <summary>Where it is, for the summary.</summary>
    public abstract string Describe();

    /// <summary>Herald's store in this database (outbox, relay, inbox).</summary>
    public abstract void UseAsHeraldStore(HeraldBuilder herald);

    public abstract Task<DbConnection> OpenAsync(CancellationToken cancellationToken);

    /// <summary>Makes the database ready for the service's tables; <paramref name="fresh"/> first
    /// removes what earlier runs left (a SQLite file goes with its data directory instead).</summary>
    public virtual Task PrepareAsync(bool fresh, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Runs statements outside any handler: creating the service's tables, stocking the shelves.</summary>
    public async Task ExecuteAsync(string sql, CancellationToken cancellationToken, params (string Name, object? Value)[] parameters)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await Sql.ExecuteAsync(connection, null, sql, cancellationToken, parameters).ConfigureAwait(false);
    }

    public static ServiceDatabase Sqlite(string service, string dataDirectory) => new SqliteDatabase(service, Path.Combine(dataDirectory, service + ".db"));

    /// <summary>The service's schema (<paramref name="schemaPrefix"/> and the service's name) in the
    /// PostgreSQL database <paramref name="connectionString"/> opens: its tables and Herald's are
    /// found there through the connection's search path.</summary>
    public static ServiceDatabase Postgres(string service, string connectionString, string schemaPrefix) =>
        new PostgresDatabase(service, connectionString, schemaPrefix + service);

    private sealed class PostgresDatabase : ServiceDatabase
    {
        private readonly string _schema;
        private readonly string _connectionString;

        public PostgresDatabase(string service, string connectionString, string schema) : base(service)
        {
            _schema = schema;
            NpgsqlConnectionStringBuilder builder;
            try
            {
                builder = new NpgsqlConnectionStringBuilder(connectionString);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"--postgres: not a PostgreSQL connection string ({e.Message})", e);
            }
            builder.SearchPath = schema;
            builder.ApplicationName ??= "orderflow-" + service;
            // Four services share the server's connection limit (100 by default): each keeps to a
            // pool of 8, and its relay to two connections of its own (the lead and LISTEN).
            builder.MaxPoolSize = Math.Min(builder.MaxPoolSize, 8);
            _connectionString = builder.ToString();
        }

        public override string Describe()
        {
            var builder = new NpgsqlConnectionStringBuilder(_connectionString);
            return $"schema {_schema} of PostgreSQL database {builder.Database} on {builder.Host}";
        }

        public override void UseAsHeraldStore(HeraldBuilder herald) => herald.UsePostgres(_connectionString, schema: _schema);

        public override async Task PrepareAsync(bool fresh, CancellationToken cancellationToken)
        {
            var quoted = "\"" + _schema.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
            if (fresh) await ExecuteAsync($"DROP SCHEMA IF EXISTS {quoted} CASCADE", cancellationToken).ConfigureAwait(false);
            await ExecuteAsync($"CREATE SCHEMA IF NOT EXISTS {quoted}", cancellationToken).ConfigureAwait(false);
        }

        public override async Task<DbConnection> OpenAsync(CancellationToken cancellationToken)
        {
            var connection = new NpgsqlConnection(_connectionString);
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
    }

    private sealed class SqliteDatabase(string service, string path) : ServiceDatabase(service)
    {
        private readonly string _connectionString = new SqliteConnectionStringBuilder { DataSource = path }.ToString();

        // One store per file, whichever hosts use it (the shop and the old shop share the shop's):
        // the store's write slot keeps this process's writers queued without blocking threads, and
        // two stores on one file would fight over SQLite's lock in its blocking busy wait instead.
        private SqliteStore? _store;

        public override string Describe() => path;

        public override void UseAsHeraldStore(HeraldBuilder herald)
        {
            var store = _store ??= new SqliteStore(_connectionString);
            herald.UseStore(_ => store);
        }

        public override async Task<DbConnection> OpenAsync(CancellationToken cancellationToken)
        {
            var connection = new SqliteConnection(_connectionString);
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
    }
}

/// <summary>Parameterised SQL on a connection (and a handler's transaction), written to run on
/// both SQLite and PostgreSQL: named <c>@parameters</c>, <c>ON CONFLICT</c>, <c>RETURNING</c>.</summary>
public static class Sql
{
    public static DbCommand Command(DbConnection connection, DbTransaction? transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value ?? DBNull.Value;
            command.Parameters.Add(parameter);
        }
        return command;
    }

    public static async Task<int> ExecuteAsync(DbConnection connection, DbTransaction? transaction, string sql, CancellationToken cancellationToken, params (string Name, object? Value)[] parameters)
    {
        await using var command = Command(connection, transaction, sql, parameters);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The rows of a query, each read by <paramref name="read"/>.</summary>
    public static async Task<List<T>> QueryAsync<T>(DbConnection connection, DbTransaction? transaction, string sql, Func<DbDataReader, T> read, CancellationToken cancellationToken, params (string Name, object? Value)[] parameters)
    {
        await using var command = Command(connection, transaction, sql, parameters);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var rows = new List<T>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) rows.Add(read(reader));
        return rows;
    }

    public static long Long(DbDataReader reader, int ordinal) => Convert.ToInt64(reader.GetValue(ordinal), System.Globalization.CultureInfo.InvariantCulture);

    public static long Cents(decimal amount) => (long)decimal.Round(amount * 100m);

    public static decimal Amount(long cents) => cents / 100m;
}
