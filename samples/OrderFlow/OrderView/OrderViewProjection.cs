using Herald;

namespace OrderFlow.OrderView;

/// <summary>The "orders-view" group: a projection that follows every topic of the flow and records
/// what happened to each order on the <see cref="OrderBoard"/>.</summary>
public sealed class OrderViewProjection(OrderBoard board) :
    IEventHandler<OrderPlaced>,
    IEventHandler<StockReserved>,
    IEventHandler<OutOfStock>,
    IEventHandler<StockReleased>,
    IEventHandler<PaymentCharged>,
    IEventHandler<PaymentDeclined>,
    IEventHandler<PaymentRefunded>,
    IEventHandler<ShipmentScheduled>,
    IEventHandler<ShipmentFailed>
{
    // Always version 2 here: a version 1 record was upcast (Currency "USD") before this ran; the
    // envelope still says which version it was written at.
    public ValueTask HandleAsync(OrderPlaced evt, EventContext context, CancellationToken cancellationToken)
    {
        board.RecordPlaced(evt.OrderId, context.Envelope.DataVersion, evt.Currency);
        return ValueTask.CompletedTask;
    }

    public ValueTask HandleAsync(StockReserved evt, EventContext context, CancellationToken cancellationToken) => Record(evt.OrderId, OrderFacts.Reserved);
    public ValueTask HandleAsync(OutOfStock evt, EventContext context, CancellationToken cancellationToken) => Record(evt.OrderId, OrderFacts.OutOfStock);
    public ValueTask HandleAsync(StockReleased evt, EventContext context, CancellationToken cancellationToken) => Record(evt.OrderId, OrderFacts.Released);
    public ValueTask HandleAsync(PaymentCharged evt, EventContext context, CancellationToken cancellationToken) => Record(evt.OrderId, OrderFacts.Charged);
    public ValueTask HandleAsync(PaymentDeclined evt, EventContext context, CancellationToken cancellationToken) => Record(evt.OrderId, OrderFacts.Declined);
    public ValueTask HandleAsync(PaymentRefunded evt, EventContext context, CancellationToken cancellationToken) => Record(evt.OrderId, OrderFacts.Refunded);
    public ValueTask HandleAsync(ShipmentScheduled evt, EventContext context, CancellationToken cancellationToken) => Record(evt.OrderId, OrderFacts.Shipped);
    public ValueTask HandleAsync(ShipmentFailed evt, EventContext context, CancellationToken cancellationToken) => Record(evt.OrderId, OrderFacts.ShipmentFailed);

    private ValueTask Record(Guid orderId, OrderFacts fact)
    {
        board.Record(orderId, fact);
        return ValueTask.CompletedTask;
    }
}
