using Herald.PostgreSql.Tests.Kit;
using Herald.Testing;
using Npgsql;

namespace Herald.PostgreSql.Tests;

/// <summary>The fault tests with a real child process killed by SIGKILL (tests/Shared/OutboxCrashScenario.cs)
/// on a real PostgreSQL: nothing is lost, and although events reach the log or the handler twice,
/// every effect happens exactly once.</summary>
public sealed class CrashTests : IDisposable
{
    private const int Events = 200;
    private readonly string _directory = Directory.CreateTempSubdirectory("herald-pg-crash-").FullName;

    private static async Task<OutboxCrashScenario> ScenarioAsync(PgScope db, string directory)
    {
        // The worker's own tables (produced, effects) land in the test's schema through the search path.
        await db.ExecuteAsync($"CREATE SCHEMA \"{db.Schema}\"");
        var connectionString = new NpgsqlConnectionStringBuilder(db.ConnectionString("worker")) { SearchPath = db.Schema }.ToString();
        return new OutboxCrashScenario("postgres", connectionString, db.Schema, async sql =>
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
        }, directory);
    }

    [PostgresFact]
    public async Task A_relay_killed_between_publishing_and_removing_loses_nothing_and_the_inbox_absorbs_what_it_published_twice()
    {
        await using var db = new PgScope("crash_relay");
        var outcome = await (await ScenarioAsync(db, _directory)).KillTheRelayBetweenPublishAndRemoveAsync(Events);

        Assert.Equal(Events, outcome.Produced);
        Assert.Equal(Events, outcome.DistinctEffects);
        Assert.Equal(Events, outcome.Effects); // each exactly once
        Assert.Equal(0, outcome.LeftInOutbox);
        Assert.True(outcome.RecordsInLog > Events, $"{outcome.RecordsInLog} records in the log: the first round was not published twice");
        Assert.True(outcome.HandledBeforeKill > 0);
    }

    [PostgresFact]
    public async Task A_consumer_killed_between_its_effects_and_its_offset_commit_runs_no_handler_again()
    {
        await using var db = new PgScope("crash_handler");
        var outcome = await (await ScenarioAsync(db, _directory)).KillTheHandlerBetweenEffectsAndOffsetCommitAsync(Events);

        Assert.Equal(Events, outcome.Produced);
        Assert.Equal(Events, outcome.HandledBeforeKill);
        Assert.Equal(Events, outcome.Effects);
        Assert.Equal(Events, outcome.DistinctEffects);
        Assert.Equal(Events, outcome.RecordsInLog);
        Assert.Equal(0, outcome.LeftInOutbox);
        Assert.Equal(0, outcome.HandledAfterRestart);
    }

    public void Dispose()
    {
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
    }
}
