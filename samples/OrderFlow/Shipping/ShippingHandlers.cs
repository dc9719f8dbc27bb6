using Herald;

namespace OrderFlow.Shipping;

/// <summary>The shipping service: books a shipment for a paid order, or reports that it cannot.
/// Its subscription uses the inbox.</summary>
public sealed class ShippingHandlers(Carrier carrier) : IEventHandler<PaymentCharged>
{
    public async ValueTask HandleAsync(PaymentCharged paid, EventContext context, CancellationToken cancellationToken)
    {
        var shipment = await carrier.BookAsync(context.Connection!, context.Transaction!, paid.OrderId, paid.ShipTo, cancellationToken);
        if (shipment.TrackingNumber is { } tracking)
            await context.PublishAsync(new ShipmentScheduled(paid.OrderId, tracking), cancellationToken: cancellationToken);
        else
            await context.PublishAsync(new ShipmentFailed(paid.OrderId, $"no carrier delivers to {paid.ShipTo}"), cancellationToken: cancellationToken);
    }
}
