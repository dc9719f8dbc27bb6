using System.Globalization;
using System.Text;
using Herald.Outbox;
using Npgsql;

namespace Herald.PostgreSql.Tests.Kit;

/// <summary>A test's own corner of the test database: a schema with a random name (dropped, with
/// everything in it, on dispose), application names that find its connections in
/// <c>pg_stat_activity</c>, and the stores made for it (disposed first).</summary>
public sealed class PgScope : IAsyncDisposable
{
    private readonly List<PostgresStore> _stores = [];

    public PgScope(string name, bool mixedCase = false)
    {
        Id = $"{name}_{Guid.NewGuid():N}"[..Math.Min(name.Length + 13, 40)];
        Schema = (mixedCase ? "T_Mixed_" : "t_") + Id;
    }

    /// <summary>Unique to this test.</summary>
    public string Id { get; }

    public string Schema { get; }

    /// <summary>The application name of <paramref name="name"/>'s pooled connections; its relay's
    /// are this followed by <c>/lead</c> and <c>/listen</c>.</summary>
    public string App(string name) => $"{Id}-{name}";

    public string ConnectionString(string name) =>
        new NpgsqlConnectionStringBuilder(Services.RequirePostgres()) { ApplicationName = App(name) }.ToString();

    /// <summary>A store on this scope's schema, disposed with the scope.</summary>
    public PostgresStore Store(string name = "a", string tablePrefix = "herald_")
    {
        var store = new PostgresStore(ConnectionString(name), Schema, tablePrefix);
        _stores.Add(store);
        return store;
    }

    /// <summary>The scope's schema-qualified, quoted name of a table.</summary>
    public string Table(string name) => $"\"{Schema}\".\"{name}\"";

    public async Task<NpgsqlConnection> OpenAdminAsync()
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(Services.RequirePostgres()) { ApplicationName = App("admin") }.ToString());
        await connection.OpenAsync();
        return connection;
    }

    public async Task<long> ScalarAsync(string sql)
    {
        await using var connection = await OpenAdminAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    public async Task<string?> TextAsync(string sql)
    {
        await using var connection = await OpenAdminAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync() as string;
    }

    public async Task ExecuteAsync(string sql)
    {
        await using var connection = await OpenAdminAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>The server processes of the sessions with this application name.</summary>
    public async Task<List<int>> PidsAsync(string applicationName)
    {
        await using var connection = await OpenAdminAsync();
        await using var command = new NpgsqlCommand("SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = applicationName });
        var pids = new List<int>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) pids.Add(reader.GetInt32(0));
        return pids;
    }

    /// <summary>Terminates the sessions with this application name as an administrator would
    /// (pg_terminate_backend), waiting until they have gone; returns how many there were.</summary>
    public async Task<int> TerminateAsync(string applicationName)
    {
        var pids = await PidsAsync(applicationName);
        foreach (var pid in pids) await TerminatePidAsync(pid);
        return pids.Count;
    }

    public async Task TerminatePidAsync(int pid)
    {
        await using var connection = await OpenAdminAsync();
        await using var command = new NpgsqlCommand("SELECT pg_terminate_backend($1, 10000)", connection);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = pid });
        if (!(bool)(await command.ExecuteScalarAsync())!) throw new InvalidOperationException($"session {pid} did not end");
    }

    /// <summary>Adds the messages in a transaction of the store's, committing it or rolling it back.</summary>
    public static async Task AddAsync(PostgresStore store, bool commit, params OutboxMessage[][] calls)
    {
        await using var connection = await store.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        foreach (var messages in calls) await store.AddAsync(transaction, messages);
        if (commit) await transaction.CommitAsync();
        else await transaction.RollbackAsync();
    }

    public static OutboxMessage Message(string topic, string? key, string value, long createdMs = 1_000, int headerCount = 1) =>
        new(0, topic, key is null ? null : Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(value),
            Encoding.UTF8.GetBytes("h:" + value), headerCount, createdMs, 0);

    public static string Text(byte[]? bytes) => bytes is null ? "<null>" : Encoding.UTF8.GetString(bytes);

    public async ValueTask DisposeAsync()
    {
        foreach (var store in _stores) await store.DisposeAsync();
        if (Services.Postgres is null) return;
        await ExecuteAsync($"DROP SCHEMA IF EXISTS \"{Schema}\" CASCADE");
    }
}

/// <summary>Waiting for a condition with a timeout, never a bare sleep.</summary>
public static class Eventually
{
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan? timeout = null, string? what = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting for {what ?? "the condition"}");
            await Task.Delay(10);
        }
    }

    public static Task WaitUntilAsync(Func<bool> condition, TimeSpan? timeout = null, string? what = null) =>
        WaitUntilAsync(() => Task.FromResult(condition()), timeout, what);
}
