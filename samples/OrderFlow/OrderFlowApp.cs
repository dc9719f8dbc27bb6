using Herald;
using Herald.DeadLetters;
using Herald.Embedded;
using Herald.Kafka;
using Herald.Log;
using Herald.Outbox;
using Herald.Subscriptions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrderFlow.Inventory;
using OrderFlow.OrderView;
using OrderFlow.Payments;
using OrderFlow.Run;
using OrderFlow.Services;
using OrderFlow.Shipping;

namespace OrderFlow;

/// <summary>Runs the sample: the shop and three services, each a host of its own with its own
/// database (Herald's outbox and inbox beside its tables), all on one embedded log; the shop's
/// previous release, publishing OrderPlaced version 1, takes a share of the orders; a projection
/// host follows every order. Places the orders, follows them to their final states and returns the
/// audited summary.</summary>
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

    /// <summary>The services that keep state, each in its own database.</summary>
    public static readonly string[] Services = ["shop", "inventory", "payments", "shipping"];

    /// <summary>What every service agrees on: the events, their topics and keys. One topic per
    /// publishing service; the order id is the key of every event, so each order's events stay in
    /// order within a topic and spread over its partitions.</summary>
    public static void MapEvents(HeraldBuilder h)
    {
        h.UseSystemTextJson(OrderFlowJson.Default.Options); // source-generated: no reflection per event
        h.Options.Source = "orderflow";
        foreach (var topic in (string[])["orders", "inventory", "payments", "shipping"]) h.Topic(topic, partitions: 4);
        // OrderPlaced is at version 2 (it gained Currency); version 1 records, from the old shop or
        // from before the upgrade, are read as OrderPlacedV1 and upcast before any handler sees them.
        h.Event<OrderPlaced>("orders", e => e.OrderId.ToString())
            .Version(2)
            .Upcast(1, (OrderPlacedV1 v1) => v1.ToVersion2());
        h.Event<StockReserved>("inventory", e => e.OrderId.ToString());
        h.Event<OutOfStock>("inventory", e => e.OrderId.ToString());
        h.Event<StockReleased>("inventory", e => e.OrderId.ToString());
        h.Event<PaymentCharged>("payments", e => e.OrderId.ToString());
        h.Event<PaymentDeclined>("payments", e => e.OrderId.ToString());
        h.Event<PaymentRefunded>("payments", e => e.OrderId.ToString());
        h.Event<ShipmentScheduled>("shipping", e => e.OrderId.ToString());
        h.Event<ShipmentFailed>("shipping", e => e.OrderId.ToString());
    }

    /// <summary>The old shop: the shop's previous release, still taking a share of the orders while
    /// the upgrade rolls out. It shares the shop's database (its orders table and outbox) and knows
    /// OrderPlaced only as it was then: version 1, without a currency (ce_dataversion 1).</summary>
    public static void MapOldShopEvents(HeraldBuilder h)
    {
        h.UseSystemTextJson(OrderFlowJson.Default.Options);
        h.Options.Source = "orderflow-old-shop";
        h.Topic("orders", partitions: 4);
        h.Event<OrderPlacedV1>("orders", e => e.OrderId.ToString(), typeName: nameof(OrderPlaced));
    }

    /// <summary>The choreography: who reacts to what. No service calls another; each reacts to
    /// events and publishes its own. The services' subscriptions use the inbox: each event is
    /// handled once, in one transaction with the state it changes and the events it publishes
    /// (which go to the service's outbox and are relayed once that transaction commits).</summary>
    public static void Subscribe(string service, HeraldBuilder h)
    {
        switch (service)
        {
            case "shop":
            case "old-shop":
                break; // publish OrderPlaced (v2, and v1 from the old shop) through the shop's outbox (Shop), handle nothing
            case "inventory":
                h.Subscribe("inventory", s => s
                    .UseInbox()
                    .Handle<OrderPlaced, InventoryHandlers>()          // → StockReserved | OutOfStock
                    .Handle<PaymentDeclined, InventoryHandlers>()      // compensation → StockReleased
                    .Handle<PaymentRefunded, InventoryHandlers>()      // compensation → StockReleased
                    .Configure(FastRetries));
                break;
            case "payments":
                h.Subscribe("payments", s => s
                    .UseInbox()
                    .Handle<StockReserved, PaymentHandlers>()          // → PaymentCharged | PaymentDeclined (or throws: dead letter)
                    .Handle<ShipmentFailed, PaymentHandlers>()         // compensation → PaymentRefunded
                    .Configure(FastRetries));
                break;
            case "shipping":
                h.Subscribe("shipping", s => s
                    .UseInbox()
                    .Handle<PaymentCharged, ShippingHandlers>()        // → ShipmentScheduled | ShipmentFailed
                    .Configure(FastRetries));
                break;
            case "orders-view":
                // A projection: recording a fact twice changes nothing, so it needs no inbox.
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
                break;
            default:
                throw new ArgumentException($"no service '{service}'", nameof(service));
        }
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

        var databases = Services.ToDictionary(s => s, s => options.Postgres is { } postgres
            ? ServiceDatabase.Postgres(s, postgres, options.PostgresSchemaPrefix)
            : ServiceDatabase.Sqlite(s, dataDirectory));
        await PrepareDatabasesAsync(databases, options, cancellationToken);
        var openingStock = await Warehouse.OnHandAsync(databases["inventory"], cancellationToken);

        // The one line that differs between the embedded log and Kafka: the transport.
        await using var log = options.Kafka is null ? EmbeddedLog.Open(Path.Combine(dataDirectory, "log")) : null;
        Action<HeraldBuilder> transport = log is not null
            ? h => h.UseTransport(_ => new EmbeddedTransport(log, ownsLog: false))
            : h => h.UseKafka(options.Kafka!, k =>
            {
                if (options.KafkaBrokerCreatesTopics) k.TopicCreation = TopicCreation.BrokerAutoCreate;
                options.KafkaSettings?.Invoke(k);
            });
        var hosts = new List<(string Name, IHost Host)>();
        foreach (var service in Services) hosts.Add((service, BuildHost(service, transport, databases[service], board)));
        hosts.Add(("old-shop", BuildHost("old-shop", transport, databases["shop"], board)));
        hosts.Add(("orders-view", BuildHost("orders-view", transport, null, board)));
        var shopHost = hosts[0].Host;
        var oldShopHost = hosts[^2].Host;
        var viewHost = hosts[^1].Host;
        var where = options.Kafka is { } kafka ? $"events on Kafka at {kafka}, data in {dataDirectory}" : $"data in {dataDirectory}";
        output.WriteLine($"OrderFlow: placing {options.Orders} orders (seed {options.Seed}); {where}");
        var progress = new Progress(output, plan.Count);
        try
        {
            foreach (var (_, host) in hosts) await host.StartAsync(cancellationToken);

            // Stop on the caller's token (Ctrl+C) or at the timeout.
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            stop.CancelAfter(options.Timeout);
            var shop = new Shop(shopHost.Services.GetRequiredService<TransactionalOutbox>(), oldShopHost.Services.GetRequiredService<TransactionalOutbox>());
            var deadLetters = viewHost.Services.GetRequiredService<DeadLetterQueue>();
            var placing = shop.PlaceAsync(plan, stop.Token);
            var finished = await FollowAsync(board, shop, placing, deadLetters, progress, options.ProgressInterval, stop.Token);
            var elapsed = progress.Elapsed;
            foreach (var (_, host) in hosts) await host.StopAsync(CancellationToken.None);

            var letters = await ListDeadLettersAsync(deadLetters, board, CancellationToken.None);
            var failureGroups = new List<(string Topic, string Group, DeadLetterFailureGroup Failure)>();
            foreach (var (topic, group) in letters.Select(l => (l.Topic, l.Group)).Distinct())
                foreach (var failure in await deadLetters.GroupByFailureAsync(topic, group, CancellationToken.None))
                    failureGroups.Add((topic, group, failure));
            var state = new ServiceState(
                openingStock,
                await Warehouse.OnHandAsync(databases["inventory"], CancellationToken.None),
                await Warehouse.ReservationsAsync(databases["inventory"], CancellationToken.None),
                await PaymentLedger.ChargesAsync(databases["payments"], CancellationToken.None),
                await Carrier.ShipmentsAsync(databases["shipping"], CancellationToken.None));
            var summary = OrderFlowSummary.Audit(new OrderFlowSummary.Inputs(
                options, dataDirectory, databases.Values.Select(d => $"{d.Service}: {d.Describe()}").ToList(),
                plan, shop.Placed, finished, elapsed, board, state, letters, failureGroups));
            summary.WriteTo(output);
            return summary;
        }
        finally
        {
            foreach (var (_, host) in hosts)
            {
                if (host is IAsyncDisposable a) await a.DisposeAsync();
                else host.Dispose();
            }
        }
    }

    /// <summary>The service's tables, and the stock that arrives for this run.</summary>
    private static async Task PrepareDatabasesAsync(Dictionary<string, ServiceDatabase> databases, OrderFlowOptions options, CancellationToken cancellationToken)
    {
        foreach (var database in databases.Values) await database.PrepareAsync(options.Fresh, cancellationToken);
        await databases["shop"].ExecuteAsync(Shop.Schema, cancellationToken);
        await databases["inventory"].ExecuteAsync(Warehouse.Schema, cancellationToken);
        await databases["payments"].ExecuteAsync(PaymentLedger.Schema, cancellationToken);
        await databases["shipping"].ExecuteAsync(Carrier.Schema, cancellationToken);
        await Warehouse.RestockAsync(databases["inventory"], OrderPlan.OpeningStock(options.Orders), cancellationToken);
    }

    private static IHost BuildHost(string service, Action<HeraldBuilder> transport, ServiceDatabase? database, OrderBoard board)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ApplicationName = $"OrderFlow.{service}", DisableDefaults = true });
        // Handler failures and dead letters are part of the show here, and the summary reports
        // them; per-record warnings with stack traces would drown the progress lines.
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddFilter("Herald.Subscription", LogLevel.Error);
        builder.Services.AddSingleton(board);
        builder.Services.AddSingleton<PaymentGateway>();
        builder.Services.AddSingleton<Carrier>();
        builder.Services.AddHerald(h =>
        {
            // Every service on the one log (or Kafka, with --kafka), each with its own database.
            transport(h);
            database?.UseAsHeraldStore(h);
            if (service == "old-shop") MapOldShopEvents(h);
            else MapEvents(h);
            Subscribe(service, h);
        });
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

/// <summary>What the services' databases hold at the end of a run, for the audit.</summary>
public sealed record ServiceState(
    IReadOnlyDictionary<string, long> OpeningStock,
    IReadOnlyDictionary<string, long> ClosingStock,
    IReadOnlyDictionary<Guid, Reservation> Reservations,
    IReadOnlyDictionary<Guid, Charge> Charges,
    IReadOnlyDictionary<Guid, Shipment> Shipments);
