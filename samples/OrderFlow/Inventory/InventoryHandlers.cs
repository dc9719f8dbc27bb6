using Herald;

namespace OrderFlow.Inventory;

/// <summary>The inventory service: reserves stock for a placed order, and releases it again when
/// the order fails further on (payment declined, or refunded after a failed shipment).</summary>
public sealed class InventoryHandlers(Warehouse warehouse) :
    IEventHandler<OrderPlaced>,
    IEventHandler<PaymentDeclined>,
    IEventHandler<PaymentRefunded>
{
    public async ValueTask HandleAsync(OrderPlaced order, EventContext context, CancellationToken cancellationToken)
    {
        var reservation = warehouse.Reserve(order.OrderId, order.Sku, order.Quantity);
        switch (reservation.Status)
        {
            case ReservationStatus.Held:
                await context.PublishAsync(new StockReserved(order.OrderId, order.Sku, order.Quantity, order.Amount, order.Card, order.ShipTo), cancellationToken: cancellationToken);
                break;
            case ReservationStatus.Refused:
                await context.PublishAsync(new OutOfStock(order.OrderId, order.Sku, order.Quantity, reservation.Available), cancellationToken: cancellationToken);
                break;
            case ReservationStatus.Released:
                break; // a late duplicate of an order that has already been compensated
        }
    }

    public ValueTask HandleAsync(PaymentDeclined declined, EventContext context, CancellationToken cancellationToken) =>
        ReleaseAsync(declined.OrderId, "payment declined", context, cancellationToken);

    public ValueTask HandleAsync(PaymentRefunded refunded, EventContext context, CancellationToken cancellationToken) =>
        ReleaseAsync(refunded.OrderId, "payment refunded", context, cancellationToken);

    private async ValueTask ReleaseAsync(Guid orderId, string reason, EventContext context, CancellationToken cancellationToken)
    {
        if (warehouse.Release(orderId) is { Status: ReservationStatus.Released } released)
            await context.PublishAsync(new StockReleased(orderId, released.Sku, released.Quantity, reason), cancellationToken: cancellationToken);
    }
}
