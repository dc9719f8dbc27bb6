using System.Data.Common;
using OrderFlow.Services;

namespace OrderFlow.Payments;

public enum ChargeStatus { Charged, Declined, Refunded }

public sealed record Charge(Guid OrderId, string ChargeId, decimal Amount, ChargeStatus Status);

/// <summary>The payment service's own state, in its database: one charge per order, written on the
/// handler's connection and transaction.</summary>
public static class PaymentLedger
{
    public const string Schema = """
        CREATE TABLE IF NOT EXISTS charges (order_id TEXT PRIMARY KEY, charge_id TEXT NOT NULL, amount_cents BIGINT NOT NULL, status TEXT NOT NULL);
        """;

    public static Task RecordAsync(DbConnection connection, DbTransaction transaction, Charge charge, CancellationToken cancellationToken) =>
        Sql.ExecuteAsync(connection, transaction, "INSERT INTO charges (order_id, charge_id, amount_cents, status) VALUES (@id, @charge, @cents, @status)",
            cancellationToken, ("@id", charge.OrderId.ToString()), ("@charge", charge.ChargeId), ("@cents", Sql.Cents(charge.Amount)), ("@status", charge.Status.ToString()));

    /// <summary>Marks the order's charge refunded; the charge, or an exception when there is no approved one.</summary>
    public static async Task<Charge> RefundAsync(DbConnection connection, DbTransaction transaction, Guid orderId, CancellationToken cancellationToken)
    {
        var refunded = await Sql.QueryAsync(connection, transaction,
            "UPDATE charges SET status = @refunded WHERE order_id = @id AND status = @charged RETURNING charge_id, amount_cents",
            r => new Charge(orderId, r.GetString(0), Sql.Amount(Sql.Long(r, 1)), ChargeStatus.Refunded), cancellationToken,
            ("@refunded", nameof(ChargeStatus.Refunded)), ("@id", orderId.ToString()), ("@charged", nameof(ChargeStatus.Charged))).ConfigureAwait(false);
        return refunded.Count == 1 ? refunded[0] : throw new InvalidOperationException($"order {orderId} has no approved charge to refund");
    }

    /// <summary>Every charge, by order, for the audit.</summary>
    public static async Task<Dictionary<Guid, Charge>> ChargesAsync(ServiceDatabase database, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        var rows = await Sql.QueryAsync(connection, null, "SELECT order_id, charge_id, amount_cents, status FROM charges",
            r => new Charge(Guid.Parse(r.GetString(0)), r.GetString(1), Sql.Amount(Sql.Long(r, 2)), Enum.Parse<ChargeStatus>(r.GetString(3))),
            cancellationToken).ConfigureAwait(false);
        return rows.ToDictionary(c => c.OrderId);
    }
}
