using System.Text.Json;
using System.Text.Json.Serialization;

namespace OrderFlow;

// The events of the flow, one topic per service that publishes them. Every event is keyed by its
// order id, so the events of one order stay in order within each topic. Each event carries what
// the next service needs (event-carried state transfer): no service queries another.

// topic "orders": published by the shop
public sealed record OrderPlaced(Guid OrderId, string Customer, string Sku, int Quantity, decimal Amount, string Card, string ShipTo);

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
[JsonSerializable(typeof(StockReserved))]
[JsonSerializable(typeof(OutOfStock))]
[JsonSerializable(typeof(StockReleased))]
[JsonSerializable(typeof(PaymentCharged))]
[JsonSerializable(typeof(PaymentDeclined))]
[JsonSerializable(typeof(PaymentRefunded))]
[JsonSerializable(typeof(ShipmentScheduled))]
[JsonSerializable(typeof(ShipmentFailed))]
internal sealed partial class OrderFlowJson : JsonSerializerContext;
