using Herald.Testing;
using OrderFlow;
using OrderFlow.Inventory;
using OrderFlow.OrderView;
using OrderFlow.Run;
using Xunit.Abstractions;

namespace Herald.Tests.Samples;

/// <summary>Runs the OrderFlow sample (the README's first command) in process, small, and checks
/// that its summary adds up.</summary>
public class OrderFlowTests(ITestOutputHelper output)
{
    private static OrderFlowOptions Small(string data, int orders = 300) => new()
    {
        Orders = orders,
        Seed = 42,
        DataDirectory = data,
        Timeout = TimeSpan.FromSeconds(60),
        ProgressInterval = TimeSpan.FromMilliseconds(100),
    };

    private async Task<OrderFlowSummary> RunAsync(OrderFlowOptions options)
    {
        var text = new StringWriter();
        try
        {
            return await OrderFlowApp.RunAsync(options, text);
        }
        finally
        {
            output.WriteLine(text.ToString());
        }
    }

    [Fact]
    public async Task Every_order_reaches_the_final_state_its_scenario_predicts_the_old_shops_upcast_with_USD_and_poison_orders_are_dead_lettered()
    {
        using var dir = new TempDirectory("orderflow");
        var summary = await RunAsync(Small(dir.Path));

        Assert.True(summary.AddsUp, string.Join(Environment.NewLine, summary.Problems));
        Assert.True(summary.Finished);
        Assert.Equal(300, summary.Placed);
        Assert.Equal(300, OrderStates.Final.Sum(summary.Count));
        Assert.Equal(0, summary.Count(OrderState.InFlight) + summary.Count(OrderState.Inconsistent));
        foreach (var state in OrderStates.Final) Assert.Equal(summary.Expected[state], summary.Count(state));
        Assert.True(summary.PoisonOrders > 0);
        Assert.Equal(summary.PoisonOrders, summary.DeadLetters);
        Assert.Equal(summary.PoisonOrders, summary.Count(OrderState.DeadLettered));
        Assert.True(summary.Count(OrderState.Declined) > 0);
        Assert.True(summary.Count(OrderState.Shipped) > 0);
        Assert.True(summary.Count(OrderState.OutOfStock) > 0);
        Assert.True(summary.Count(OrderState.Refunded) > 0);
        Assert.True(summary.StockAddsUp);
        Assert.True(summary.MoneyAddsUp);
        Assert.Equal(summary.Charged - summary.Refunded, summary.ShippedValue);

        // The old shop's share (--old-shop-rate 0.2): written as OrderPlaced v1 (the view saw
        // ce_dataversion 1 on each), upcast with USD, and on through the flow like any other order.
        Assert.Equal(60, summary.PlacedByOldShop);
        Assert.Equal(new Dictionary<string, int> { ["USD"] = 60 }, summary.UpcastCurrencies);
        OrderFlowUpcasts.AssertUpcastAndFinal(summary);
        Assert.True(summary.UpcastCounts[OrderState.Shipped] > 0);
        Assert.True(summary.UpcastCounts[OrderState.Declined] + summary.UpcastCounts[OrderState.OutOfStock] + summary.UpcastCounts[OrderState.Refunded] > 0); // compensations ran for v1 orders too
    }

    [Fact]
    public async Task Without_the_old_shop_every_order_arrives_as_version_2()
    {
        using var dir = new TempDirectory("orderflow");
        var options = Small(dir.Path, orders: 100);
        options.OldShopRate = 0;
        var summary = await RunAsync(options);

        Assert.True(summary.AddsUp, string.Join(Environment.NewLine, summary.Problems));
        Assert.Equal(0, summary.Upcast);
        Assert.Equal(100, summary.ArrivedAsVersion2);
        Assert.Empty(summary.UpcastCurrencies);
    }

    [Fact]
    public void The_audit_fails_an_old_shop_order_that_arrives_in_another_currency_or_at_version_2()
    {
        // Two sold-out orders from the old shop, their effects right: only how they arrived is off.
        Guid wrongCurrency = Guid.NewGuid(), wrongVersion = Guid.NewGuid();
        var plan = new[] { wrongCurrency, wrongVersion }
            .Select(id => new PlannedOrder(new OrderFlow.OrderPlaced(id, "customer-001", OrderPlan.SoldOutSku, 1, 10m, OrderPlan.ApprovedCard, "Lisbon", OrderPlacedV1.Currency), OrderState.OutOfStock, ByOldShop: true))
            .ToList();
        var board = new OrderBoard();
        foreach (var planned in plan) board.Track(planned.Order.OrderId, planned.Expected);
        board.RecordPlaced(wrongCurrency, writtenVersion: 1, currency: "EUR");
        board.RecordPlaced(wrongVersion, writtenVersion: 2, currency: OrderPlacedV1.Currency);
        foreach (var planned in plan) board.Record(planned.Order.OrderId, OrderFacts.OutOfStock);
        var state = new ServiceState(
            new Dictionary<string, long>(), new Dictionary<string, long>(),
            plan.ToDictionary(p => p.Order.OrderId, p => new Reservation(p.Order.OrderId, p.Order.Sku, 1, ReservationStatus.Refused, 0)),
            new Dictionary<Guid, OrderFlow.Payments.Charge>(), new Dictionary<Guid, OrderFlow.Shipping.Shipment>());

        var summary = OrderFlowSummary.Audit(new OrderFlowSummary.Inputs(
            new OrderFlowOptions(), "data", [], plan, plan.Count, Finished: true, TimeSpan.FromSeconds(1), board, state, [], []));

        Assert.False(summary.AddsUp);
        Assert.Equal(2, summary.Count(OrderState.OutOfStock)); // the states are right; the arrivals are not
        Assert.Contains(summary.Problems, p => p.Contains("another currency", StringComparison.Ordinal) && p.Contains(wrongCurrency.ToString(), StringComparison.Ordinal));
        Assert.Contains(summary.Problems, p => p.Contains("at a version their shop does not write", StringComparison.Ordinal) && p.Contains(wrongVersion.ToString(), StringComparison.Ordinal));
        Assert.Contains(summary.Problems, p => p.StartsWith("1 orders arrived as OrderPlaced v1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_second_run_in_the_same_data_directory_counts_only_its_own_orders()
    {
        using var dir = new TempDirectory("orderflow");
        var first = await RunAsync(Small(dir.Path, orders: 200));
        var second = await RunAsync(Small(dir.Path, orders: 200));

        Assert.True(first.AddsUp, string.Join(Environment.NewLine, first.Problems));
        Assert.True(second.AddsUp, string.Join(Environment.NewLine, second.Problems));
        Assert.Equal(200, OrderStates.Final.Sum(second.Count));
        Assert.Equal(second.PoisonOrders, second.DeadLetters); // the first run's dead letters are still in the topic, not counted
    }

    [Fact]
    public async Task A_run_that_times_out_does_not_add_up()
    {
        using var dir = new TempDirectory("orderflow");
        var options = Small(dir.Path, orders: 2000);
        options.Timeout = TimeSpan.FromMilliseconds(1);
        var summary = await RunAsync(options);

        Assert.False(summary.Finished);
        Assert.False(summary.AddsUp);
        Assert.Contains(summary.Problems, p => p.StartsWith("stopped after", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Each_service_keeps_its_state_its_outbox_and_its_inbox_in_its_own_database()
    {
        using var dir = new TempDirectory("orderflow");
        var summary = await RunAsync(Small(dir.Path, orders: 200));
        Assert.True(summary.AddsUp, string.Join(Environment.NewLine, summary.Problems));

        long Scalar(string service, string sql)
        {
            using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dir.Path, service + ".db")}");
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            return (long)command.ExecuteScalar()!;
        }
        foreach (var service in OrderFlowApp.Services)
            Assert.Equal(0, Scalar(service, "SELECT COUNT(*) FROM herald_outbox")); // everything relayed
        Assert.Equal(200, Scalar("shop", "SELECT COUNT(*) FROM orders"));
        // Every order placed was handled once by inventory; payments handled each reserved order
        // (each refund too), shipping each charged one; the poison payments left no inbox entry.
        Assert.Equal(200 + summary.Count(OrderState.Declined) + summary.Count(OrderState.Refunded),
            Scalar("inventory", "SELECT COUNT(*) FROM herald_inbox WHERE grp = 'inventory'"));
        Assert.Equal(summary.Count(OrderState.Shipped) + summary.Count(OrderState.Declined) + 2 * summary.Count(OrderState.Refunded),
            Scalar("payments", "SELECT COUNT(*) FROM herald_inbox WHERE grp = 'payments'"));
        Assert.Equal(summary.Count(OrderState.Shipped) + summary.Count(OrderState.Refunded),
            Scalar("shipping", "SELECT COUNT(*) FROM herald_inbox WHERE grp = 'shipping'"));
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    }
}
