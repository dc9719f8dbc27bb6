using System.Data.Common;
using OrderFlow.Services;

namespace OrderFlow.Shipping;

public sealed record Shipment(Guid OrderId, string Destination, string? TrackingNumber);

/// <summary>A stand-in for a carrier's booking API, which delivers everywhere but Atlantis, and the
/// shipping service's record of its bookings, in its database.</summary>
public sealed class Carrier
{
    public const string Undeliverable = "Atlantis";

    public const string Schema = """
        CREATE TABLE IF NOT EXISTS shipments (order_id TEXT PRIMARY KEY, destination TEXT NOT NULL, tracking TEXT);
        """;

    /// <summary>Books a shipment (its tracking number, or none when the carrier cannot deliver) and
    /// records it on the handler's connection and transaction.</summary>
    public async Task<Shipment> BookAsync(DbConnection connection, DbTransaction transaction, Guid orderId, string destination, CancellationToken cancellationToken)
    {
        var shipment = new Shipment(orderId, destination, destination == Undeliverable ? null : $"TRK{orderId.ToString("N")[..10].ToUpperInvariant()}");
        await Sql.ExecuteAsync(connection, transaction, "INSERT INTO shipments (order_id, destination, tracking) VALUES (@id, @destination, @tracking)",
            cancellationToken, ("@id", orderId.ToString()), ("@destination", destination), ("@tracking", shipment.TrackingNumber)).ConfigureAwait(false);
        return shipment;
    }

    /// <summary>Every shipment, by order, for the audit.</summary>
    public static async Task<Dictionary<Guid, Shipment>> ShipmentsAsync(ServiceDatabase database, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        var rows = await Sql.QueryAsync(connection, null, "SELECT order_id, destination, tracking FROM shipments",
            r => new Shipment(Guid.Parse(r.GetString(0)), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2)), cancellationToken).ConfigureAwait(false);
        return rows.ToDictionary(s => s.OrderId);
    }
}
