using Herald.PostgreSql.Tests.Kit;
using Herald.Testing;
using OrderFlow;
using OrderFlow.OrderView;
using Xunit.Abstractions;

namespace Herald.PostgreSql.Tests;

/// <summary>The OrderFlow sample with --postgres: each service's state, outbox and inbox in a
/// schema of its own on a real PostgreSQL, and a summary that adds up.</summary>
public class OrderFlowTests(ITestOutputHelper output)
{
    [PostgresFact]
    public async Task OrderFlow_on_PostgreSQL_adds_up_with_each_service_in_its_own_schema_and_every_event_handled_once()
    {
        await using var db = new PgScope("orderflow");
        using var dir = new TempDirectory("orderflow");
        var prefix = db.Schema + "_";
        var options = new OrderFlowOptions
        {
            Orders = 200,
            Seed = 42,
            DataDirectory = dir.Path,
            Postgres = db.ConnectionString("orderflow"),
            PostgresSchemaPrefix = prefix,
            Fresh = true,
            Timeout = TimeSpan.FromSeconds(90),
            ProgressInterval = TimeSpan.FromMilliseconds(250),
        };
        var text = new StringWriter();
        OrderFlowSummary summary;
        try
        {
            summary = await OrderFlowApp.RunAsync(options, text);
            Assert.True(summary.AddsUp, string.Join(Environment.NewLine, summary.Problems));
            Assert.True(summary.Finished);
            foreach (var state in OrderStates.Final) Assert.Equal(summary.Expected[state], summary.Count(state));
            Assert.True(summary.PoisonOrders > 0);
            Assert.Equal(summary.PoisonOrders, summary.DeadLetters);
            OrderFlowUpcasts.AssertUpcastAndFinal(summary); // the old shop on the shop's schema: its outbox relayed too

            Task<long> Count(string service, string sql) => db.ScalarAsync(sql.Replace("{s}", $"\"{prefix}{service}\"", StringComparison.Ordinal));
            foreach (var service in OrderFlowApp.Services)
                Assert.Equal(0, await Count(service, "SELECT count(*) FROM {s}.herald_outbox")); // everything relayed
            Assert.Equal(200, await Count("shop", "SELECT count(*) FROM {s}.orders"));
            // The handlers' inbox entries, in the schema of the service that handled the event.
            Assert.Equal(200 + summary.Count(OrderState.Declined) + summary.Count(OrderState.Refunded),
                await Count("inventory", "SELECT count(*) FROM {s}.herald_inbox WHERE grp = 'inventory'"));
            Assert.Equal(summary.Count(OrderState.Shipped) + summary.Count(OrderState.Declined) + 2 * summary.Count(OrderState.Refunded),
                await Count("payments", "SELECT count(*) FROM {s}.herald_inbox WHERE grp = 'payments'"));
            Assert.Equal(summary.Count(OrderState.Shipped) + summary.Count(OrderState.Refunded),
                await Count("shipping", "SELECT count(*) FROM {s}.herald_inbox WHERE grp = 'shipping'"));
            Assert.Contains($"schema {prefix}inventory of PostgreSQL", text.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            output.WriteLine(text.ToString());
            foreach (var service in OrderFlowApp.Services) await db.ExecuteAsync($"DROP SCHEMA IF EXISTS \"{prefix}{service}\" CASCADE");
        }
    }
}
