using System.Globalization;

namespace OrderFlow.Payments;

public sealed record Charge(Guid OrderId, string ChargeId, decimal Amount, bool Approved, string? DeclineReason, bool Refunded);

/// <summary>A stand-in for a card processor. Card tokens are "card-NNNN": "card-0002" is declined
/// for insufficient funds, any other number is approved, and a token that is not a number cannot
/// be processed at all — it throws every time, however often it is retried. Idempotent per order,
/// as a real processor is with an idempotency key.</summary>
public sealed class PaymentGateway
{
    private readonly Lock _lock = new();
    private readonly Dictionary<Guid, Charge> _charges = [];

    public Charge Charge(Guid orderId, decimal amount, string card)
    {
        lock (_lock)
        {
            if (_charges.TryGetValue(orderId, out var existing)) return existing;
            if (!card.StartsWith("card-", StringComparison.Ordinal) || !int.TryParse(card.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out var number))
                throw new FormatException($"card token '{card}' is malformed");
            var approved = number != 2;
            return _charges[orderId] = new Charge(orderId, $"ch_{orderId:N}", amount, approved, approved ? null : "insufficient funds", Refunded: false);
        }
    }

    public Charge Refund(Guid orderId)
    {
        lock (_lock)
        {
            if (!_charges.TryGetValue(orderId, out var charge) || !charge.Approved)
                throw new InvalidOperationException($"order {orderId} has no approved charge to refund");
            return _charges[orderId] = charge with { Refunded = true };
        }
    }

    public Charge? Find(Guid orderId)
    {
        lock (_lock) return _charges.GetValueOrDefault(orderId);
    }
}
