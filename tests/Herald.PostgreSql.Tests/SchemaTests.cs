using Herald.PostgreSql.Tests.Kit;
using Microsoft.Extensions.DependencyInjection;

namespace Herald.PostgreSql.Tests;

/// <summary>Herald's tables created and migrated on start: once, whatever starts at once, and
/// never over a newer version.</summary>
public class SchemaTests
{
    [PostgresFact]
    public async Task Stores_initializing_at_once_on_a_new_schema_create_it_and_the_tables_once_and_record_the_version()
    {
        await using var db = new PgScope("mig");
        var stores = Enumerable.Range(0, 8).Select(i => db.Store($"s{i}")).ToArray();
        await Task.WhenAll(stores.Select(s => Task.Run(async () => await s.InitializeAsync())));
        await Task.WhenAll(stores.Select(s => s.InitializeAsync().AsTask())); // again: nothing to do
        await db.Store("late").InitializeAsync();                            // a later process: nothing to do

        Assert.Equal(1, await db.ScalarAsync($"SELECT version FROM {db.Table("herald_schema")} WHERE component = 'stores'"));
        Assert.Equal(1, await db.ScalarAsync($"SELECT count(*) FROM {db.Table("herald_schema")}"));
        Assert.Equal(3, await db.ScalarAsync($"SELECT count(*) FROM pg_tables WHERE schemaname = '{db.Schema}'"));
        var deferred = await db.TextAsync($"SELECT indexdef FROM pg_indexes WHERE schemaname = '{db.Schema}' AND indexname = 'herald_outbox_deferred'");
        Assert.Contains("WHERE (due_ms > 0)", deferred);
        Assert.NotNull(await db.TextAsync($"SELECT indexdef FROM pg_indexes WHERE schemaname = '{db.Schema}' AND indexname = 'herald_inbox_handled'"));
    }

    [PostgresFact]
    public async Task Tables_at_a_newer_version_than_this_Herald_knows_are_refused_naming_both_versions()
    {
        await using var db = new PgScope("newer");
        await db.Store("old").InitializeAsync();
        await db.ExecuteAsync($"UPDATE {db.Table("herald_schema")} SET version = 99 WHERE component = 'stores'");

        var error = await Assert.ThrowsAsync<InvalidOperationException>(async () => await db.Store("new").InitializeAsync());
        Assert.Contains("version 99", error.Message);
        Assert.Contains("(1)", error.Message);
        Assert.Contains($"{db.Schema}.herald_*", error.Message);
        Assert.Equal(99, await db.ScalarAsync($"SELECT version FROM {db.Table("herald_schema")} WHERE component = 'stores'")); // left alone
    }

    [PostgresFact]
    public async Task Two_prefixes_in_one_schema_are_separate_stores_with_separate_leaders()
    {
        await using var db = new PgScope("prefixes");
        var orders = db.Store("orders", "orders_");
        var billing = db.Store("billing", "billing_");
        await PgScope.AddAsync(orders, commit: true, [PgScope.Message("t", "k", "v")]);

        Assert.Single(await orders.ReadDueAsync(10, 10_000));
        Assert.Empty(await billing.ReadDueAsync(10, 10_000));
        Assert.True(await orders.TryLeadAsync("r1", TimeSpan.FromSeconds(10)));
        Assert.True(await billing.TryLeadAsync("r2", TimeSpan.FromSeconds(10)));
        Assert.Equal(6, await db.ScalarAsync($"SELECT count(*) FROM pg_tables WHERE schemaname = '{db.Schema}'"));
    }

    [PostgresFact]
    public async Task A_mixed_case_schema_and_prefix_are_quoted_and_kept_as_written()
    {
        await using var db = new PgScope("case", mixedCase: true);
        var store = db.Store("a", "Herald_");
        await PgScope.AddAsync(store, commit: true, [PgScope.Message("t", null, "v")]);

        Assert.Equal(1, await db.ScalarAsync($"SELECT count(*) FROM pg_namespace WHERE nspname = '{db.Schema}'"));
        Assert.Equal(1, await db.ScalarAsync($"SELECT count(*) FROM {db.Table("Herald_outbox")}"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("semi;colon")]
    [InlineData("quo\"te")]
    [InlineData("dash-ed")]
    [InlineData("1starts_with_a_digit")]
    [InlineData("caf\u00e9")]
    [InlineData("a123456789012345678901234567890123456789012345678901234567890123")] // 64
    public void A_schema_that_is_not_a_plain_identifier_is_refused_naming_it(string schema)
    {
        var error = Assert.Throws<ArgumentException>(() => new PostgresStore("Host=localhost", schema));
        Assert.Equal("schema", error.ParamName);
        Assert.Contains($"'{schema}'", error.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("herald-")]
    [InlineData("x\"; DROP TABLE t; --")]
    [InlineData("p1234567890123456789012345678901234567890")] // 41
    public void A_table_prefix_that_is_not_a_plain_identifier_is_refused_naming_it(string prefix)
    {
        var error = Assert.Throws<ArgumentException>(() => new PostgresStore("Host=localhost", tablePrefix: prefix));
        Assert.Equal("tablePrefix", error.ParamName);
    }

    [Fact]
    public void A_connection_string_Npgsql_cannot_read_is_refused_at_configuration()
    {
        var error = Assert.Throws<ArgumentException>(() => new PostgresStore("Host=localhost;Flavour=strawberry"));
        Assert.Equal("connectionString", error.ParamName);
        Assert.Contains("flavour", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void UsePostgres_checks_its_arguments_when_configured()
    {
        var error = Assert.Throws<ArgumentException>(() => new ServiceCollection().AddHerald(h => h.UsePostgres("Host=localhost", tablePrefix: "bad prefix")));
        Assert.Equal("tablePrefix", error.ParamName);
    }
}
