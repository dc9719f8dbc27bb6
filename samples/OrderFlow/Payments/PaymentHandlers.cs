using Herald;

namespace OrderFlow.Payments;

/// <summary>The payment service: charges an order once its stock is reserved, and refunds the
/// charge when the shipment fails.</summary>
public sealed class PaymentHandlers(PaymentGateway gateway) :
    IEventHandler<StockReserved>,
    IEventHandler<ShipmentFailed>
{
    public async ValueTask HandleAsync(StockReserved reserved, EventContext context, CancellationToken cancellationToken)
    {
        // A malformed card token throws here on every attempt: after the retries the event goes to
        // the dead-letter topic "inventory.payments.dlq", and its order waits there for an operator.
        var charge = gateway.Charge(reserved.OrderId, reserved.Amount, reserved.Card);
        if (charge.Approved)
            await context.PublishAsync(new PaymentCharged(reserved.OrderId, charge.ChargeId, charge.Amount, reserved.ShipTo), cancellationToken: cancellationToken);
        else
            await context.PublishAsync(new PaymentDeclined(reserved.OrderId, charge.DeclineReason ?? "declined"), cancellationToken: cancellationToken);
    }

    public async ValueTask HandleAsync(ShipmentFailed failed, EventContext context, CancellationToken cancellationToken)
    {
        var charge = gateway.Refund(failed.OrderId);
        await context.PublishAsync(new PaymentRefunded(failed.OrderId, charge.ChargeId, charge.Amount), cancellationToken: cancellationToken);
    }
}
