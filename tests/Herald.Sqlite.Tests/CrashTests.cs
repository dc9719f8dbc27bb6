using Herald.Testing;
using Microsoft.Data.Sqlite;

namespace Herald.Sqlite.Tests;

/// <summary>The fault tests with a real child process killed by SIGKILL (tests/Shared/OutboxCrashScenario.cs)
/// on the SQLite store: nothing is lost, and although events reach the log or the handler twice,
/// every effect happens exactly once.</summary>
public sealed class CrashTests : IDisposable
{
    private const int Events = 200;
    private readonly string _directory = Directory.CreateTempSubdirectory("herald-sqlite-crash-").FullName;

    private string DatabasePath => Path.Combine(_directory, "service.db");

    private OutboxCrashScenario Scenario() => new("sqlite", $"Data Source={DatabasePath}", "-", ScalarAsync, _directory);

    private async Task<long> ScalarAsync(string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={DatabasePath};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task A_relay_killed_between_publishing_and_removing_loses_nothing_and_the_inbox_absorbs_what_it_published_twice()
    {
        var outcome = await Scenario().KillTheRelayBetweenPublishAndRemoveAsync(Events);

        Assert.Equal(Events, outcome.Produced);
        Assert.Equal(Events, outcome.DistinctEffects);
        Assert.Equal(Events, outcome.Effects); // each exactly once
        Assert.Equal(0, outcome.LeftInOutbox);
        // The killed relay's round reached the log, and the restarted relay published it again.
        Assert.True(outcome.RecordsInLog > Events, $"{outcome.RecordsInLog} records in the log: the first round was not published twice");
        Assert.True(outcome.HandledBeforeKill > 0);
    }

    [Fact]
    public async Task A_consumer_killed_between_its_effects_and_its_offset_commit_runs_no_handler_again()
    {
        var outcome = await Scenario().KillTheHandlerBetweenEffectsAndOffsetCommitAsync(Events);

        Assert.Equal(Events, outcome.Produced);
        Assert.Equal(Events, outcome.HandledBeforeKill);
        Assert.Equal(Events, outcome.Effects);
        Assert.Equal(Events, outcome.DistinctEffects);
        Assert.Equal(Events, outcome.RecordsInLog);
        Assert.Equal(0, outcome.LeftInOutbox);
        // Every event was delivered again (no offset had been committed); the inbox acknowledged
        // each without running the handler.
        Assert.Equal(0, outcome.HandledAfterRestart);
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
    }
}
