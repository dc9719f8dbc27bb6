using System.Globalization;
using Herald.DeadLetters;
using OrderFlow.Inventory;
using OrderFlow.OrderView;
using OrderFlow.Payments;
using OrderFlow.Run;
using OrderFlow.Shipping;

namespace OrderFlow;

/// <summary>The end of a run, audited: how many orders reached each final state against how many
/// their scenarios predict, the dead letters against the poison orders, and whether stock, money
/// and shipments agree with each order's final state. <see cref="AddsUp"/> only when nothing is
/// off; <see cref="Problems"/> says what is.</summary>
public sealed class OrderFlowSummary
{
    /// <summary>What a run leaves behind, to audit.</summary>
    public sealed record Inputs(
        OrderFlowOptions Options,
        string DataDirectory,
        IReadOnlyList<string> Databases,
        IReadOnlyList<PlannedOrder> Plan,
        int Placed,
        bool Finished,
        TimeSpan Elapsed,
        OrderBoard Board,
        ServiceState State,
        IReadOnlyList<RunDeadLetter> DeadLetters,
        IReadOnlyList<(string Topic, string Group, DeadLetterFailureGroup Failure)> FailureGroups);

    private OrderFlowSummary(Inputs run) => Run = run;

    private Inputs Run { get; }

    public int Orders => Run.Plan.Count;
    public int Placed => Run.Placed;

    /// <summary>Whether every order reached a final state before the timeout.</summary>
    public bool Finished => Run.Finished;

    public TimeSpan Elapsed => Run.Elapsed;
    public required IReadOnlyDictionary<OrderState, int> Counts { get; init; }
    public required IReadOnlyDictionary<OrderState, int> Expected { get; init; }
    public int PoisonOrders => Expected[OrderState.DeadLettered];

    /// <summary>The unresolved dead letters of this run's orders, across every dead-letter topic.</summary>
    public int DeadLetters => Run.DeadLetters.Count;

    /// <summary>Orders the plan gave the old shop, which publishes OrderPlaced version 1.</summary>
    public required int PlacedByOldShop { get; init; }

    /// <summary>Orders whose OrderPlaced the view got written at version 1 and upcast to version 2.</summary>
    public required int Upcast { get; init; }

    /// <summary>The upcast orders by the state they reached (compare <see cref="OldShopExpected"/>).</summary>
    public required IReadOnlyDictionary<OrderState, int> UpcastCounts { get; init; }

    /// <summary>The old shop's orders by the final state their scenarios predict.</summary>
    public required IReadOnlyDictionary<OrderState, int> OldShopExpected { get; init; }

    /// <summary>Orders whose OrderPlaced the view got as written, at version 2.</summary>
    public required int ArrivedAsVersion2 { get; init; }

    /// <summary>The currencies the upcast orders reached the handlers with (the upcaster's "USD").</summary>
    public required IReadOnlyDictionary<string, int> UpcastCurrencies { get; init; }

    public required decimal Charged { get; init; }
    public required decimal Refunded { get; init; }
    public required decimal ShippedValue { get; init; }

    /// <summary>Whether stock on the shelves, reservations and final states agree.</summary>
    public required bool StockAddsUp { get; init; }

    /// <summary>Whether charged minus refunded is the value of the shipped orders.</summary>
    public required bool MoneyAddsUp { get; init; }

    public required IReadOnlyList<string> Problems { get; init; }
    public bool AddsUp => Problems.Count == 0;

    public int Count(OrderState state) => Counts[state];

    private const string EffectsKind = "have stock, payment or shipment that does not match their final state";

    public static OrderFlowSummary Audit(Inputs run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var problems = new List<string>();
        var counts = run.Board.CountByState();
        var expected = Enum.GetValues<OrderState>().ToDictionary(s => s, _ => 0);
        var oldShopExpected = Enum.GetValues<OrderState>().ToDictionary(s => s, _ => 0);
        var byOldShop = 0;
        foreach (var planned in run.Plan)
        {
            expected[planned.Expected]++;
            if (!planned.ByOldShop) continue;
            oldShopExpected[planned.Expected]++;
            byOldShop++;
        }

        if (!run.Finished) problems.Add($"stopped after {run.Elapsed.TotalSeconds:F1} s (timeout or cancellation) with {counts[OrderState.InFlight]} orders still in flight");
        if (run.Placed != run.Plan.Count) problems.Add($"placed {run.Placed} of {run.Plan.Count} orders");
        var final = OrderStates.Final.Sum(s => counts[s]);
        if (final != run.Plan.Count) problems.Add($"final states add up to {final}, not the {run.Plan.Count} orders placed");

        // Each order: the final state its scenario predicts, with stock, payment and shipment to match.
        var findings = new Findings();
        var amounts = run.Plan.ToDictionary(p => p.Order.OrderId, p => p.Order.Amount);
        var plans = run.Plan.ToDictionary(p => p.Order.OrderId);
        decimal charged = 0, refunded = 0, shippedValue = 0;
        int upcast = 0, asVersion2 = 0;
        var upcastCounts = Enum.GetValues<OrderState>().ToDictionary(s => s, _ => 0);
        var upcastCurrencies = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var order in run.Board.Orders)
        {
            var id = order.OrderId;
            if (order.Placed is { } arrival)
            {
                // The old shop's orders arrive written at version 1 and upcast, in the currency the
                // upcaster gives them (the plan's, OrderPlacedV1.Currency); the new shop's as version 2.
                var plannedOrder = plans[id];
                var currency = arrival.Currency ?? "no currency"; // null only if a v1 record were read as v2 without its upcaster
                if (arrival.WrittenVersion == 1)
                {
                    upcast++;
                    upcastCounts[order.State]++;
                    upcastCurrencies[currency] = upcastCurrencies.GetValueOrDefault(currency) + 1;
                }
                else asVersion2++;
                if (plannedOrder.ByOldShop != (arrival.WrittenVersion == 1))
                    findings.Add("arrived at a version their shop does not write", $"{id}: placed by the {(plannedOrder.ByOldShop ? "old" : "new")} shop, arrived as OrderPlaced v{arrival.WrittenVersion}");
                if (arrival.Currency != plannedOrder.Order.Currency)
                    findings.Add("reached the handlers in another currency than the plan's", $"{id}: placed by the {(plannedOrder.ByOldShop ? "old" : "new")} shop in {plannedOrder.Order.Currency}, arrived in {currency} as v{arrival.WrittenVersion}");
            }
            if (order.State == OrderState.InFlight)
                findings.Add("never reached a final state", $"{id}: expected {order.Expected.Describe()}, has seen {order.Facts}");
            else if (order.State != order.Expected)
                findings.Add("reached a final state their scenario does not predict", $"{id}: expected {order.Expected.Describe()}, got {order.State.Describe()} ({order.Facts})");
            var charge = run.State.Charges.GetValueOrDefault(id);
            if (charge is { Status: ChargeStatus.Charged or ChargeStatus.Refunded }) charged += charge.Amount;
            if (charge is { Status: ChargeStatus.Refunded }) refunded += charge.Amount;
            if (order.State == OrderState.Shipped) shippedValue += amounts[id];
            if (EffectsMismatch(order.State, run.State.Reservations.GetValueOrDefault(id), charge, run.State.Shipments.GetValueOrDefault(id)) is { } mismatch)
                findings.Add(EffectsKind, $"{id} ({order.State.Describe()}): {mismatch}");
        }

        // Every poison order's payment is in the payments group's dead-letter topic, and nothing else is.
        var poison = run.Plan.Where(p => p.Expected == OrderState.DeadLettered).Select(p => p.Order.OrderId).ToHashSet();
        if (run.DeadLetters.Count != poison.Count) problems.Add($"{run.DeadLetters.Count} dead letters, but {poison.Count} poison orders");
        foreach (var d in run.DeadLetters)
        {
            if (!poison.Contains(d.OrderId))
                findings.Add("that are not poison have dead letters", $"{d.OrderId}: {d.Topic}.{d.Group}.dlq, {d.Letter.Reason}, {d.Letter.ExceptionType}: {d.Letter.ExceptionMessage}");
            else if ((d.Topic, d.Group, d.Letter.Reason) != ("inventory", "payments", DeadLetterReason.Failed))
                findings.Add("that are poison have a dead letter other than their failed payment", $"{d.OrderId}: {d.Topic}.{d.Group}.dlq, {d.Letter.Reason}");
        }

        if (run.Finished && upcast != byOldShop) problems.Add($"{upcast} orders arrived as OrderPlaced v1 and were upcast, but the old shop placed {byOldShop}");

        var stockMismatches = StockMismatches(run);
        foreach (var mismatch in stockMismatches) problems.Add($"stock does not add up for {mismatch}");
        // Orders still in flight may have been charged and not shipped yet: money adds up only at the end.
        var moneyAddsUp = charged - refunded == shippedValue;
        if (!moneyAddsUp && run.Finished)
            problems.Add($"money does not add up: charged {Money(charged)} − refunded {Money(refunded)} ≠ {Money(shippedValue)} of shipped orders");
        problems.AddRange(findings.Describe());

        return new OrderFlowSummary(run)
        {
            Counts = counts,
            Expected = expected,
            PlacedByOldShop = byOldShop,
            Upcast = upcast,
            UpcastCounts = upcastCounts,
            OldShopExpected = oldShopExpected,
            ArrivedAsVersion2 = asVersion2,
            UpcastCurrencies = upcastCurrencies,
            Charged = charged,
            Refunded = refunded,
            ShippedValue = shippedValue,
            StockAddsUp = stockMismatches.Count == 0 && !findings.Has(EffectsKind),
            MoneyAddsUp = moneyAddsUp,
            Problems = problems,
        };
    }

    /// <summary>SKUs whose stock does not add up over this run: what left the shelf is not what this
    /// run's orders hold (with --data, earlier runs' reservations are not this run's).</summary>
    private static List<string> StockMismatches(Inputs run)
    {
        var held = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var planned in run.Plan)
            if (run.State.Reservations.GetValueOrDefault(planned.Order.OrderId) is { Status: ReservationStatus.Held } r)
                held[r.Sku] = held.GetValueOrDefault(r.Sku) + r.Quantity;
        var mismatches = new List<string>();
        foreach (var (sku, opening) in run.State.OpeningStock)
        {
            var taken = opening - run.State.ClosingStock.GetValueOrDefault(sku);
            if (taken != held.GetValueOrDefault(sku)) mismatches.Add($"{sku}: {taken} off the shelf, {held.GetValueOrDefault(sku)} held by this run's reservations");
        }
        return mismatches;
    }

    /// <summary>What the services did for an order, against what its final state says they did.</summary>
    private static string? EffectsMismatch(OrderState state, Reservation? reservation, Charge? charge, Shipment? shipment)
    {
        (ReservationStatus? Stock, string Payment, string Shipment)? wanted = state switch
        {
            OrderState.Shipped => (ReservationStatus.Held, "charged", "booked"),
            OrderState.Declined => (ReservationStatus.Released, "declined", "none"),
            OrderState.OutOfStock => (ReservationStatus.Refused, "none", "none"),
            OrderState.Refunded => (ReservationStatus.Released, "refunded", "failed"),
            OrderState.DeadLettered => (ReservationStatus.Held, "none", "none"),
            _ => null, // not final: reported above
        };
        if (wanted is not { } w) return null;
        var payment = charge is null ? "none" : charge.Status switch
        {
            ChargeStatus.Declined => "declined",
            ChargeStatus.Refunded => "refunded",
            _ => "charged",
        };
        var booked = shipment is null ? "none" : shipment.TrackingNumber is null ? "failed" : "booked";
        return (reservation?.Status, payment, booked) == w
            ? null
            : $"stock {reservation?.Status.ToString() ?? "none"}, payment {payment}, shipment {booked}; expected stock {w.Stock}, payment {w.Payment}, shipment {w.Shipment}";
    }

    public void WriteTo(TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(output);
        output.WriteLine();
        output.WriteLine($"OrderFlow: {Placed} of {Orders} orders placed, {(Finished ? "all final" : "NOT all final")} after {Elapsed.TotalSeconds:F1} s (seed {Run.Options.Seed})");
        output.WriteLine();
        output.WriteLine("  final state       orders  expected");
        foreach (var state in OrderStates.Final)
            output.WriteLine($"  {state.Describe(),-16} {Counts[state],7} {Expected[state],9}   {Path(state)}");
        if (Counts[OrderState.InFlight] > 0) output.WriteLine($"  {"in flight",-16} {Counts[OrderState.InFlight],7} {0,9}   never reached a final state");
        if (Counts[OrderState.Inconsistent] > 0) output.WriteLine($"  {"inconsistent",-16} {Counts[OrderState.Inconsistent],7} {0,9}   contradictory events");
        var final = OrderStates.Final.Sum(s => Counts[s]);
        output.WriteLine($"  {"total",-16} {final,7} {Orders,9}   {(final == Placed ? "=" : "≠")} {Placed} orders placed");
        output.WriteLine();

        var currencies = UpcastCurrencies.Count == 0 ? "" : $" ({string.Join(", ", UpcastCurrencies.Select(c => $"{c.Value} in {c.Key}"))})";
        output.WriteLine($"  upcast:         {Upcast} of the old shop's {PlacedByOldShop} orders arrived as OrderPlaced v1 and were upcast to v2 before any handler saw them{currencies}; {ArrivedAsVersion2} arrived as v2");
        if (Upcast > 0)
        {
            var states = OrderStates.Final.Where(s => UpcastCounts[s] > 0 || OldShopExpected[s] > 0).Select(s => $"{UpcastCounts[s]} {s.Describe()}{(UpcastCounts[s] == OldShopExpected[s] ? "" : $" (expected {OldShopExpected[s]})")}");
            output.WriteLine($"                  and went on like any other order: {string.Join(", ", states)}");
        }

        var byTopic = Run.DeadLetters.GroupBy(d => $"{d.Topic}.{d.Group}.dlq").Select(g => $"{g.Count()} in {g.Key}");
        output.WriteLine($"  dead letters:   {DeadLetters} ({(DeadLetters == 0 ? "none" : string.Join(", ", byTopic))}) for {PoisonOrders} poison orders (DeadLetterQueue.ListAsync)");
        foreach (var (topic, group, failure) in Run.FailureGroups)
        {
            // GroupByFailureAsync covers the whole dead-letter topic: with --data, earlier runs' letters too.
            var ours = Run.DeadLetters.Where(d => (d.Topic, d.Group) == (topic, group)).ToList();
            var earlier = Run.FailureGroups.Where(f => (f.Topic, f.Group) == (topic, group)).Sum(f => f.Failure.Count) > ours.Count;
            var attempts = string.Join(" or ", ours.Where(d => d.Letter.FailureGroup == failure.FailureGroup).Select(d => d.Letter.Attempts).Distinct().Order());
            output.WriteLine($"    {topic}.{group}.dlq: {failure.Count} × {failure.FailureGroup}{(earlier ? " (earlier runs' included)" : "")}, after {attempts} attempts: \"{failure.SampleMessage}\"");
        }
        output.WriteLine(StockAddsUp
            ? "  stock:          every shipped or dead-lettered order holds its stock; declined and refunded orders' stock is back on the shelf"
            : "  stock:          DOES NOT ADD UP");
        output.WriteLine($"  money:          charged {Money(Charged)}, refunded {Money(Refunded)}, kept {Money(Charged - Refunded)} {(MoneyAddsUp ? "=" : "≠")} {Money(ShippedValue)} worth of orders shipped");
        output.WriteLine($"  nothing lost:   {(AddsUp ? "every order placed reached exactly one final state, the one its scenario predicts" : "NO")}");
        output.WriteLine($"  data:           {Run.DataDirectory}");
        foreach (var database in Run.Databases) output.WriteLine($"                  {database}");
        output.WriteLine();
        if (AddsUp)
        {
            output.WriteLine("OK: the summary adds up.");
            return;
        }
        output.WriteLine("FAILED: the summary does not add up:");
        foreach (var problem in Problems) output.WriteLine($"  - {problem}");
    }

    private static string Path(OrderState state) => state switch
    {
        OrderState.Shipped => "stock reserved → payment charged → shipment booked",
        OrderState.Declined => "payment declined → stock released",
        OrderState.OutOfStock => "sold out → cancelled, nothing to undo",
        OrderState.Refunded => "shipment failed → payment refunded → stock released",
        OrderState.DeadLettered => "payment threw on every attempt → dead-letter topic, stock held",
        _ => "",
    };

    private static string Money(decimal amount) => amount.ToString("#,##0.00", CultureInfo.InvariantCulture);

    /// <summary>Per-order findings: a count and a few examples of each kind.</summary>
    private sealed class Findings
    {
        private readonly Dictionary<string, (int Count, List<string> Examples)> _kinds = new(StringComparer.Ordinal);

        public void Add(string kind, string example)
        {
            var (count, examples) = _kinds.TryGetValue(kind, out var k) ? k : (0, []);
            if (examples.Count < 3) examples.Add(example);
            _kinds[kind] = (count + 1, examples);
        }

        public bool Has(string kind) => _kinds.ContainsKey(kind);

        public IEnumerable<string> Describe() =>
            _kinds.Select(k => $"{k.Value.Count} orders {k.Key}, e.g. {string.Join("; ", k.Value.Examples)}");
    }
}
