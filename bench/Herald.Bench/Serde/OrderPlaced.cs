using Herald.Schemas.Avro;

namespace Herald.Bench.Serde;

public enum OrderStatus
{
    Placed,
    Paid,
    Shipped,
    Cancelled,
}

public sealed record OrderLine(string Sku, int Quantity, double UnitPrice);

/// <summary>The event of the serde benchmarks: an order as a shop publishes it (a Guid, strings,
/// an int, a decimal amount, a timestamp, an enum, a nullable string and three lines).</summary>
public sealed record OrderPlaced(
    Guid OrderId,
    string CustomerId,
    string Currency,
    int ItemCount,
    [AvroDecimal(18, 2)] decimal Total,
    DateTimeOffset PlacedAt,
    OrderStatus Status,
    string? CouponCode,
    IReadOnlyList<OrderLine> Lines)
{
    public static OrderPlaced Sample() => new(
        Guid.Parse("7d1c6a4e-35b1-4c4a-9f0e-2a8f4d6b9c21"),
        "customer-004217",
        "EUR",
        3,
        129.85m,
        new DateTimeOffset(2026, 12, 7, 18, 30, 15, 123, TimeSpan.Zero).AddMicroseconds(456),
        OrderStatus.Paid,
        "WINTER10",
        [
            new OrderLine("SKU-100-RED-M", 1, 49.95),
            new OrderLine("SKU-220-BLU-L", 1, 39.95),
            new OrderLine("SKU-310-BLK-S", 1, 39.95),
        ]);

    /// <summary>Field by field, the lines by value (a record compares its list by reference).</summary>
    public bool SameAs(OrderPlaced other) =>
        (OrderId, CustomerId, Currency, ItemCount, Total, PlacedAt, Status, CouponCode) ==
        (other.OrderId, other.CustomerId, other.Currency, other.ItemCount, other.Total, other.PlacedAt, other.Status, other.CouponCode)
        && Lines.SequenceEqual(other.Lines);

    /// <summary>Throws unless <paramref name="back"/>, read back by <paramref name="reader"/>, is this order.</summary>
    public void CheckRoundTrip(OrderPlaced back, string reader)
    {
        if (!SameAs(back)) throw new InvalidOperationException($"{reader}: the order read back differs: {back}");
    }
}
