namespace OrderFlow.Shipping;

public sealed record Shipment(Guid OrderId, string Destination, string? TrackingNumber);

/// <summary>A stand-in for a carrier's booking API: it delivers everywhere but Atlantis.
/// Idempotent per order.</summary>
public sealed class Carrier
{
    public const string Undeliverable = "Atlantis";

    private readonly Lock _lock = new();
    private readonly Dictionary<Guid, Shipment> _shipments = [];
    private int _next;

    public Shipment Book(Guid orderId, string destination)
    {
        lock (_lock)
        {
            if (_shipments.TryGetValue(orderId, out var existing)) return existing;
            var tracking = destination == Undeliverable ? null : $"TRK{++_next:D8}";
            return _shipments[orderId] = new Shipment(orderId, destination, tracking);
        }
    }

    public Shipment? Find(Guid orderId)
    {
        lock (_lock) return _shipments.GetValueOrDefault(orderId);
    }
}
