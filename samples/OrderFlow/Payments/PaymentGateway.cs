using System.Globalization;

namespace OrderFlow.Payments;

/// <summary>A stand-in for a card processor. Card tokens are "card-NNNN": "card-0002" is declined
/// for insufficient funds, any other number is approved, and a token that is not a number cannot
/// be processed at all — it throws every time, however often it is retried.</summary>
public sealed class PaymentGateway
{
    /// <summary>Approves or declines; the decline reason when declined.</summary>
    public (bool Approved, string? DeclineReason) Charge(Guid orderId, decimal amount, string card)
    {
        if (!card.StartsWith("card-", StringComparison.Ordinal) || !int.TryParse(card.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out var number))
            throw new FormatException($"card token '{card}' is malformed");
        return number != 2 ? (true, null) : (false, "insufficient funds");
    }

    /// <summary>The processor's id for an order's charge.</summary>
    public static string ChargeId(Guid orderId) => $"ch_{orderId:N}";
}
