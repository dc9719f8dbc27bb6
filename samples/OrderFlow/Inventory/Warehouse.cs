using System.Data.Common;
using OrderFlow.Services;

namespace OrderFlow.Inventory;

public enum ReservationStatus { Held, Refused, Released }

public sealed record Reservation(Guid OrderId, string Sku, int Quantity, ReservationStatus Status, int Available);

/// <summary>The inventory service's own state, in its database: stock on hand per SKU and one
/// reservation per order. Every change is made on the handler's connection and transaction, so it
/// commits together with the events the handler publishes and the inbox entry of the event it
/// handled: a redelivered event is never applied twice, and no event is published for a change
/// that rolled back.</summary>
public static class Warehouse
{
    public const string Schema = """
        CREATE TABLE IF NOT EXISTS stock (sku TEXT PRIMARY KEY, on_hand BIGINT NOT NULL);
        CREATE TABLE IF NOT EXISTS reservations (order_id TEXT PRIMARY KEY, sku TEXT NOT NULL, quantity BIGINT NOT NULL, status TEXT NOT NULL, available BIGINT NOT NULL);
        """;

    /// <summary>Stock arriving for a run: each SKU's shelf gets <paramref name="stock"/> more (a
    /// sold-out SKU is listed with none).</summary>
    public static async Task RestockAsync(ServiceDatabase database, IReadOnlyDictionary<string, int> stock, CancellationToken cancellationToken)
    {
        foreach (var (sku, quantity) in stock)
            await database.ExecuteAsync("INSERT INTO stock (sku, on_hand) VALUES (@sku, @n) ON CONFLICT (sku) DO UPDATE SET on_hand = stock.on_hand + excluded.on_hand",
                cancellationToken, ("@sku", sku), ("@n", (long)quantity)).ConfigureAwait(false);
    }

    /// <summary>Takes the order's items off the shelf, or refuses when there are not enough. One
    /// conditional update, so that concurrent orders for one SKU never oversell it.</summary>
    public static async Task<Reservation> ReserveAsync(DbConnection connection, DbTransaction transaction, Guid orderId, string sku, int quantity, CancellationToken cancellationToken)
    {
        var taken = await Sql.ExecuteAsync(connection, transaction, "UPDATE stock SET on_hand = on_hand - @q WHERE sku = @sku AND on_hand >= @q",
            cancellationToken, ("@q", (long)quantity), ("@sku", sku)).ConfigureAwait(false);
        var available = (await Sql.QueryAsync(connection, transaction, "SELECT on_hand FROM stock WHERE sku = @sku", r => Sql.Long(r, 0), cancellationToken, ("@sku", sku)).ConfigureAwait(false)).FirstOrDefault();
        if (taken == 1) available += quantity; // what there was before this order took its share
        var status = taken == 1 ? ReservationStatus.Held : ReservationStatus.Refused;
        await Sql.ExecuteAsync(connection, transaction, "INSERT INTO reservations (order_id, sku, quantity, status, available) VALUES (@id, @sku, @q, @status, @available)",
            cancellationToken, ("@id", orderId.ToString()), ("@sku", sku), ("@q", (long)quantity), ("@status", status.ToString()), ("@available", available)).ConfigureAwait(false);
        return new Reservation(orderId, sku, quantity, status, (int)available);
    }

    /// <summary>Puts a held reservation's items back on the shelf (a compensation); null when the
    /// order holds nothing.</summary>
    public static async Task<Reservation?> ReleaseAsync(DbConnection connection, DbTransaction transaction, Guid orderId, CancellationToken cancellationToken)
    {
        var released = await Sql.QueryAsync(connection, transaction,
            "UPDATE reservations SET status = @released WHERE order_id = @id AND status = @held RETURNING sku, quantity",
            r => (Sku: r.GetString(0), Quantity: (int)Sql.Long(r, 1)), cancellationToken,
            ("@released", nameof(ReservationStatus.Released)), ("@id", orderId.ToString()), ("@held", nameof(ReservationStatus.Held))).ConfigureAwait(false);
        if (released.Count == 0) return null;
        var (sku, quantity) = released[0];
        await Sql.ExecuteAsync(connection, transaction, "UPDATE stock SET on_hand = on_hand + @q WHERE sku = @sku", cancellationToken, ("@q", (long)quantity), ("@sku", sku)).ConfigureAwait(false);
        return new Reservation(orderId, sku, quantity, ReservationStatus.Released, 0);
    }

    /// <summary>Stock on hand per SKU, for the audit.</summary>
    public static async Task<Dictionary<string, long>> OnHandAsync(ServiceDatabase database, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        var rows = await Sql.QueryAsync(connection, null, "SELECT sku, on_hand FROM stock", r => (r.GetString(0), Sql.Long(r, 1)), cancellationToken).ConfigureAwait(false);
        return rows.ToDictionary(r => r.Item1, r => r.Item2, StringComparer.Ordinal);
    }

    /// <summary>Every reservation, by order, for the audit.</summary>
    public static async Task<Dictionary<Guid, Reservation>> ReservationsAsync(ServiceDatabase database, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        var rows = await Sql.QueryAsync(connection, null, "SELECT order_id, sku, quantity, status, available FROM reservations",
            r => new Reservation(Guid.Parse(r.GetString(0)), r.GetString(1), (int)Sql.Long(r, 2), Enum.Parse<ReservationStatus>(r.GetString(3)), (int)Sql.Long(r, 4)),
            cancellationToken).ConfigureAwait(false);
        return rows.ToDictionary(r => r.OrderId);
    }
}
