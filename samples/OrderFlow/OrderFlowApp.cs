using Herald;
using Herald.DeadLetters;
using Herald.Subscriptions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrderFlow.Inventory;
using OrderFlow.OrderView;
using OrderFlow.Payments;
using OrderFlow.Run;
using OrderFlow.Shipping;

namespace OrderFlow;

/// <summary>Runs the sample: wires the services on Herald, places the orders, follows them to
/// their final states and returns the summary.</summary>
public static class OrderFlowApp
{
    /// <summary>Every (topic, group) the wiring below subscribes; each has a dead-letter topic "topic.group.dlq".</summary>
    public static readonly (string Topic, string Group)[] Subscriptions =
    [
        ("orders", "inventory"), ("payments", "inventory"),
        ("inventory", "payments"), ("shipping", "payments"),
        ("payments", "shipping"),
        ("orders", "orders-view"), ("inventory", "orders-view"), ("payments", "orders-view"), ("shipping", "orders-view"),
    ];

    /// <summary>The choreography: who publishes what where, and who reacts to it. No service calls
    /// another; each reacts to events and publishes its own.</summary>
    public static void ConfigureHerald(HeraldBuilder h, string dataDirectory)
    {
        h.UseEmbedded(dataDirectory);
        h.UseSystemTextJson(OrderFlowJson.Default.Options); // source-generated: no reflection per event
        h.Options.Source = "orderflow";

        // One topic per publishing service; the order id is the key of every event, so each
        // order's events stay in order within a topic and spread over its partitions.
        foreach (var topic in (string[])["orders", "inventory", "payments", "shipping"]) h.Topic(topic, partitions: 4);
        h.Event<OrderPlaced>("orders", e => e.OrderId.ToString());
        h.Event<StockReserved>("inventory", e => e.OrderId.ToString());
        h.Event<OutOfStock>("inventory", e => e.OrderId.ToString());
        h.Event<StockReleased>("inventory", e => e.OrderId.ToString());
        h.Event<PaymentCharged>("payments", e => e.OrderId.ToString());
        h.Event<PaymentDeclined>("payments", e => e.OrderId.ToString());
        h.Event<PaymentRefunded>("payments", e => e.OrderId.ToString());
        h.Event<ShipmentScheduled>("shipping", e => e.OrderId.ToString());
        h.Event<ShipmentFailed>("shipping", e => e.OrderId.ToString());

        // A consumer group per service: each sees every event of the topics it handles.
        h.Subscribe("inventory", s => s
            .Handle<OrderPlaced, InventoryHandlers>()          // → StockReserved | OutOfStock
            .Handle<PaymentDeclined, InventoryHandlers>()      // compensation → StockReleased
            .Handle<PaymentRefunded, InventoryHandlers>()      // compensation → StockReleased
            .Configure(FastRetries));
        h.Subscribe("payments", s => s
            .Handle<StockReserved, PaymentHandlers>()          // → PaymentCharged | PaymentDeclined (or throws: dead letter)
            .Handle<ShipmentFailed, PaymentHandlers>()         // compensation → PaymentRefunded
            .Configure(FastRetries));
        h.Subscribe("shipping", s => s
            .Handle<PaymentCharged, ShippingHandlers>()        // → ShipmentScheduled | ShipmentFailed
            .Configure(FastRetries));
        h.Subscribe("orders-view", s => s
            .Handle<OrderPlaced, OrderViewProjection>()
            .Handle<StockReserved, OrderViewProjection>()
            .Handle<OutOfStock, OrderViewProjection>()
            .Handle<StockReleased, OrderViewProjection>()
            .Handle<PaymentCharged, OrderViewProjection>()
            .Handle<PaymentDeclined, OrderViewProjection>()
            .Handle<PaymentRefunded, OrderViewProjection>()
            .Handle<ShipmentScheduled, OrderViewProjection>()
            .Handle<ShipmentFailed, OrderViewProjection>()
            .Configure(FastRetries));
    }

    /// <summary>A failing event is retried twice at once, then twice more through the retry topic,
    /// then dead-lettered; its key is parked (the default) so that the order's later events would
    /// follow it rather than overtake it. The delays are short so that the sample finishes fast;
    /// the defaults are 100 ms backoff and rounds after 5 s, 30 s and 5 min.</summary>
    private static void FastRetries(SubscriptionOptions options)
    {
        options.Retry.ImmediateRetries = 2;
        options.Retry.Backoff = TimeSpan.FromMilliseconds(10);
        options.Retry.Delayed = [TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(500)];
        options.DeadLetterMode = DeadLetterMode.Park;
    }

    public static async Task<OrderFlowSummary> RunAsync(OrderFlowOptions options, TextWriter output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        options.Validate();
        var dataDirectory = PrepareDataDirectory(options);
        var plan = OrderPlan.Make(options);
        var board = new OrderBoard();
        foreach (var planned in plan) board.Track(planned.Order.OrderId, planned.Expected);

        using var host = BuildHost(options, dataDirectory, board);
        output.WriteLine($"OrderFlow: placing {options.Orders} orders (seed {options.Seed}); data in {dataDirectory}");
        var progress = new Progress(output, plan.Count);
        await host.StartAsync(cancellationToken);

        // Stop on Ctrl+C (the host's console lifetime), on the caller's token, or at the timeout.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping);
        stop.CancelAfter(options.Timeout);
        var shop = new Shop(host.Services.GetRequiredService<IEventPublisher>());
        var deadLetters = host.Services.GetRequiredService<DeadLetterQueue>();
        var placing = shop.PlaceAsync(plan, stop.Token);
        var finished = await FollowAsync(board, shop, placing, deadLetters, progress, options.ProgressInterval, stop.Token);
        var elapsed = progress.Elapsed;
        await host.StopAsync(CancellationToken.None);

        var letters = await ListDeadLettersAsync(deadLetters, board, CancellationToken.None);
        var failureGroups = new List<(string Topic, string Group, DeadLetterFailureGroup Failure)>();
        foreach (var (topic, group) in letters.Select(l => (l.Topic, l.Group)).Distinct())
            foreach (var failure in await deadLetters.GroupByFailureAsync(topic, group, CancellationToken.None))
                failureGroups.Add((topic, group, failure));
        var summary = OrderFlowSummary.Audit(new OrderFlowSummary.Inputs(
            options, dataDirectory, plan, shop.Placed, finished, elapsed, board,
            host.Services.GetRequiredService<Warehouse>(),
            host.Services.GetRequiredService<PaymentGateway>(),
            host.Services.GetRequiredService<Carrier>(),
            letters, failureGroups));
        summary.WriteTo(output);
        return summary;
    }

    private static IHost BuildHost(OrderFlowOptions options, string dataDirectory, OrderBoard board)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ApplicationName = "OrderFlow", Args = [] });
        // Handler failures and dead letters are part of the show here, and the summary reports
        // them; per-record warnings with stack traces would drown the progress lines.
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddFilter("Herald.Subscription", LogLevel.Error);
        builder.Services.AddSingleton(board);
        builder.Services.AddSingleton(new Warehouse(OrderPlan.OpeningStock(options.Orders)));
        builder.Services.AddSingleton<PaymentGateway>();
        builder.Services.AddSingleton<Carrier>();
        builder.Services.AddHerald(h => ConfigureHerald(h, dataDirectory));
        return builder.Build();
    }

    /// <summary>Writes a progress line every interval until every order is final (true), or the
    /// run is stopped (false). Dead-lettered orders are final: they wait for an operator.</summary>
    private static async Task<bool> FollowAsync(OrderBoard board, Shop shop, Task placing, DeadLetterQueue deadLetters, Progress progress, TimeSpan interval, CancellationToken cancellationToken)
    {
        try
        {
            using var ticks = new PeriodicTimer(interval);
            while (true)
            {
                var letters = await ListDeadLettersAsync(deadLetters, board, cancellationToken);
                foreach (var letter in letters) board.Record(letter.OrderId, OrderFacts.DeadLettered);
                var counts = board.CountByState();
                progress.Write(shop.Placed, counts, letters.Count);
                if (placing.IsFaulted) await placing; // rethrows what failed
                if (placing.IsCompletedSuccessfully && counts[OrderState.InFlight] == 0) return true;
                await ticks.WaitForNextTickAsync(cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            try
            {
                await placing;
            }
            catch (OperationCanceledException)
            {
            }
            return false;
        }
    }

    /// <summary>The unresolved dead letters of this run's orders, in every dead-letter topic.</summary>
    private static async Task<List<RunDeadLetter>> ListDeadLettersAsync(DeadLetterQueue queue, OrderBoard board, CancellationToken cancellationToken)
    {
        var letters = new List<RunDeadLetter>();
        foreach (var (topic, group) in Subscriptions)
            foreach (var letter in await queue.ListAsync(topic, group, cancellationToken))
                if (Guid.TryParse(letter.KeyText, out var orderId) && board.IsTracked(orderId))
                    letters.Add(new RunDeadLetter(topic, group, orderId, letter));
        return letters;
    }

    /// <summary>--data DIR as given (wiped first with --fresh); otherwise a new directory for this
    /// run under the temp folder (--fresh removes the earlier runs' directories).</summary>
    private static string PrepareDataDirectory(OrderFlowOptions options)
    {
        var directory = options.DataDirectory is { } given ? Path.GetFullPath(given) : null;
        var wipe = directory ?? OrderFlowOptions.RunsDirectory;
        if (options.Fresh && Directory.Exists(wipe)) Directory.Delete(wipe, recursive: true);
        directory ??= Path.Combine(OrderFlowOptions.RunsDirectory, $"run-{DateTime.Now:yyyyMMdd-HHmmss}-{Guid.NewGuid().ToString("N")[..6]}");
        Directory.CreateDirectory(directory);
        return directory;
    }
}
