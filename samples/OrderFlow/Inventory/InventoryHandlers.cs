using Herald;

namespace OrderFlow.Inventory;

/// <summary>The inventory service: reserves stock for a placed order, and releases it again when
/// the order fails further on (payment declined, or refunded after a failed shipment). Its
/// subscription uses the inbox: each event is handled once, in one transaction with the stock it
/// moves and the event it publishes.</summary>
public sealed class InventoryHandlers :
    IEventHandler<OrderPlaced>,
    IEventHandler<PaymentDeclined>,
    IEventHandler<PaymentRefunded>
{
    public async ValueTask HandleAsync(OrderPlaced order, EventContext context, CancellationToken cancellationToken)
    {
        var reservation = await Warehouse.ReserveAsync(context.Connection!, context.Transaction!, order.OrderId, order.Sku, order.Quantity, cancellationToken);
        if (reservation.Status == ReservationStatus.Held)
            await context.PublishAsync(new StockReserved(order.OrderId, order.Sku, order.Quantity, order.Amount, order.Card, order.ShipTo), cancellationToken: cancellationToken);
        else
            await context.PublishAsync(new OutOfStock(order.OrderId, order.Sku, order.Quantity, reservation.Available), cancellationToken: cancellationToken);
    }

    public ValueTask HandleAsync(PaymentDeclined declined, EventContext context, CancellationToken cancellationToken) =>
        ReleaseAsync(declined.OrderId, "payment declined", context, cancellationToken);

    public ValueTask HandleAsync(PaymentRefunded refunded, EventContext context, CancellationToken cancellationToken) =>
        ReleaseAsync(refunded.OrderId, "payment refunded", context, cancellationToken);

    private static async ValueTask ReleaseAsync(Guid orderId, string reason, EventContext context, CancellationToken cancellationToken)
    {
        if (await Warehouse.ReleaseAsync(context.Connection!, context.Transaction!, orderId, cancellationToken) is { } released)
            await context.PublishAsync(new StockReleased(orderId, released.Sku, released.Quantity, reason), cancellationToken: cancellationToken);
    }
}
