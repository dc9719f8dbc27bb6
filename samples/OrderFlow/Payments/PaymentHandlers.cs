using Herald;

namespace OrderFlow.Payments;

/// <summary>The payment service: charges an order once its stock is reserved, and refunds the
/// charge when the shipment fails. Its subscription uses the inbox.</summary>
public sealed class PaymentHandlers(PaymentGateway gateway) :
    IEventHandler<StockReserved>,
    IEventHandler<ShipmentFailed>
{
    public async ValueTask HandleAsync(StockReserved reserved, EventContext context, CancellationToken cancellationToken)
    {
        // A malformed card token throws here on every attempt: after the retries the event goes to
        // the dead-letter topic "inventory.payments.dlq", and its order waits there for an operator.
        var (approved, declineReason) = gateway.Charge(reserved.OrderId, reserved.Amount, reserved.Card);
        var charge = new Charge(reserved.OrderId, PaymentGateway.ChargeId(reserved.OrderId), reserved.Amount, approved ? ChargeStatus.Charged : ChargeStatus.Declined);
        await PaymentLedger.RecordAsync(context.Connection!, context.Transaction!, charge, cancellationToken);
        if (approved)
            await context.PublishAsync(new PaymentCharged(reserved.OrderId, charge.ChargeId, charge.Amount, reserved.ShipTo), cancellationToken: cancellationToken);
        else
            await context.PublishAsync(new PaymentDeclined(reserved.OrderId, declineReason ?? "declined"), cancellationToken: cancellationToken);
    }

    public async ValueTask HandleAsync(ShipmentFailed failed, EventContext context, CancellationToken cancellationToken)
    {
        var charge = await PaymentLedger.RefundAsync(context.Connection!, context.Transaction!, failed.OrderId, cancellationToken);
        await context.PublishAsync(new PaymentRefunded(failed.OrderId, charge.ChargeId, charge.Amount), cancellationToken: cancellationToken);
    }
}
