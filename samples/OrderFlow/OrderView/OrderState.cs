namespace OrderFlow.OrderView;

/// <summary>What the order view has seen of an order: one flag per event type, plus whether one of
/// its events sits in a dead-letter topic.</summary>
[Flags]
public enum OrderFacts
{
    None = 0,
    Placed = 1 << 0,
    Reserved = 1 << 1,
    OutOfStock = 1 << 2,
    Charged = 1 << 3,
    Declined = 1 << 4,
    Shipped = 1 << 5,
    ShipmentFailed = 1 << 6,
    Refunded = 1 << 7,
    Released = 1 << 8,
    DeadLettered = 1 << 9,
}

public enum OrderState
{
    /// <summary>Still on its way.</summary>
    InFlight,

    /// <summary>Reserved, charged, shipment scheduled.</summary>
    Shipped,

    /// <summary>Payment declined; compensated: stock released.</summary>
    Declined,

    /// <summary>Not enough stock; cancelled before anything needed compensating.</summary>
    OutOfStock,

    /// <summary>Shipment failed after payment; compensated: payment refunded, stock released.</summary>
    Refunded,

    /// <summary>One of its events is in a dead-letter topic, waiting for an operator to replay or discard it.</summary>
    DeadLettered,

    /// <summary>Its events contradict each other (say, shipped and declined): a bug.</summary>
    Inconsistent,
}

public static class OrderStates
{
    /// <summary>The final states, in the order the summary lists them.</summary>
    public static readonly OrderState[] Final = [OrderState.Shipped, OrderState.Declined, OrderState.OutOfStock, OrderState.Refunded, OrderState.DeadLettered];

    // Each final state is exactly the set of events its path produces. The view consumes four
    // topics independently, so it may see a shipment before the charge that caused it: an order
    // is final only once every event of its path has arrived.
    private const OrderFacts ShippedPath = OrderFacts.Placed | OrderFacts.Reserved | OrderFacts.Charged | OrderFacts.Shipped;
    private const OrderFacts DeclinedPath = OrderFacts.Placed | OrderFacts.Reserved | OrderFacts.Declined | OrderFacts.Released;
    private const OrderFacts OutOfStockPath = OrderFacts.Placed | OrderFacts.OutOfStock;
    private const OrderFacts RefundedPath = OrderFacts.Placed | OrderFacts.Reserved | OrderFacts.Charged | OrderFacts.ShipmentFailed | OrderFacts.Refunded | OrderFacts.Released;

    public static OrderState Classify(OrderFacts facts)
    {
        var events = facts & ~OrderFacts.DeadLettered;
        if (!IsOnAPath(events)) return OrderState.Inconsistent;
        if (facts.HasFlag(OrderFacts.DeadLettered)) return facts.HasFlag(OrderFacts.Placed) ? OrderState.DeadLettered : OrderState.InFlight;
        return events switch
        {
            ShippedPath => OrderState.Shipped,
            DeclinedPath => OrderState.Declined,
            OutOfStockPath => OrderState.OutOfStock,
            RefundedPath => OrderState.Refunded,
            _ => OrderState.InFlight,
        };
    }

    public static bool IsFinal(this OrderState state) => state != OrderState.InFlight;

    private static bool IsOnAPath(OrderFacts events) =>
        (events & ~ShippedPath) == 0 || (events & ~DeclinedPath) == 0 || (events & ~OutOfStockPath) == 0 || (events & ~RefundedPath) == 0;

    public static string Describe(this OrderState state) => state switch
    {
        OrderState.InFlight => "in flight",
        OrderState.Shipped => "shipped",
        OrderState.Declined => "declined",
        OrderState.OutOfStock => "out of stock",
        OrderState.Refunded => "refunded",
        OrderState.DeadLettered => "dead-lettered",
        _ => "inconsistent",
    };
}
