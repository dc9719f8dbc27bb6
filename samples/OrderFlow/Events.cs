using System.Text.Json;
using System.Text.Json.Serialization;

namespace OrderFlow;

// The events of the flow, one topic per service that publishes them. Every event is keyed by its
// order id, so the events of one order stay in order within each topic. Each event carries what
// the next service needs (event-carried state transfer): no service queries another.

// topic "orders": published by the shop. Version 2 added the currency; the shop's previous
// release, still running beside the new one during the upgrade, publishes version 1, which every
// consumer upcasts to version 2 (with "USD", the only currency the old shop sold in) before its
// handlers see it: see OrderFlowApp.MapEvents.
public sealed record OrderPlaced(Guid OrderId, string Customer, string Sku, int Quantity, decimal Amount, string Card, string ShipTo, string Currency)
{
    /// <summary>Version 1 of an order, as the old shop writes it (Currency was added in version 2).</summary>
    public OrderPlacedV1 AsVersion1() => new(OrderId, Customer, Sku, Quantity, Amount, Card, ShipTo);
}

/// <summary>OrderPlaced version 1: the old shop's event, before orders had a currency.</summary>
public sealed record OrderPlacedV1(Guid OrderId, string Customer, string Sku, int Quantity, decimal Amount, string Card, string ShipTo)
{
    /// <summary>The currency of every version 1 order: the old shop sold in US dollars only.</summary>
    public const string Currency = "USD";

    /// <summary>The upcaster from version 1 to 2: the currency the old shop sold in, which version 1 left unsaid.</summary>
    public OrderPlaced ToVersion2() => new(OrderId, Customer, Sku, Quantity, Amount, Card, ShipTo, Currency);
}

// topic "inventory": published by the inventory service
public sealed record StockReserved(Guid OrderId, string Sku, int Quantity, decimal Amount, string Card, string ShipTo);
public sealed record OutOfStock(Guid OrderId, string Sku, int Requested, int Available);
public sealed record StockReleased(Guid OrderId, string Sku, int Quantity, string Reason);

// topic "payments": published by the payment service
public sealed record PaymentCharged(Guid OrderId, string ChargeId, decimal Amount, string ShipTo);
public sealed record PaymentDeclined(Guid OrderId, string Reason);
public sealed record PaymentRefunded(Guid OrderId, string ChargeId, decimal Amount);

// topic "shipping": published by the shipping service
public sealed record ShipmentScheduled(Guid OrderId, string TrackingNumber);
public sealed record ShipmentFailed(Guid OrderId, string Reason);

/// <summary>Source-generated JSON for the events: no reflection when they are written or read.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(OrderPlaced))]
[JsonSerializable(typeof(OrderPlacedV1))]
[JsonSerializable(typeof(StockReserved))]
[JsonSerializable(typeof(OutOfStock))]
[JsonSerializable(typeof(StockReleased))]
[JsonSerializable(typeof(PaymentCharged))]
[JsonSerializable(typeof(PaymentDeclined))]
[JsonSerializable(typeof(PaymentRefunded))]
[JsonSerializable(typeof(ShipmentScheduled))]
[JsonSerializable(typeof(ShipmentFailed))]
internal sealed partial class OrderFlowJson : JsonSerializerContext;
