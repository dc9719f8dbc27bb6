namespace OrderFlow.Inventory;

public enum ReservationStatus { Held, Refused, Released }

public sealed record Reservation(Guid OrderId, string Sku, int Quantity, ReservationStatus Status, int Available);

/// <summary>The inventory service's own state: stock on hand per SKU and one reservation per
/// order. Idempotent by order id, as everything a handler touches must be: delivery is
/// at-least-once, so the same event can be handled twice and must get the same answer.</summary>
public sealed class Warehouse
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, int> _initial;
    private readonly Dictionary<string, int> _onHand;
    private readonly Dictionary<Guid, Reservation> _reservations = [];

    public Warehouse(IReadOnlyDictionary<string, int> stock)
    {
        _initial = new Dictionary<string, int>(stock, StringComparer.Ordinal);
        _onHand = new Dictionary<string, int>(stock, StringComparer.Ordinal);
    }

    /// <summary>Takes the order's items off the shelf, or refuses when there are not enough.</summary>
    public Reservation Reserve(Guid orderId, string sku, int quantity)
    {
        lock (_lock)
        {
            if (_reservations.TryGetValue(orderId, out var existing)) return existing; // a redelivery: same answer
            var available = _onHand.GetValueOrDefault(sku);
            var status = available >= quantity ? ReservationStatus.Held : ReservationStatus.Refused;
            if (status == ReservationStatus.Held) _onHand[sku] = available - quantity;
            return _reservations[orderId] = new Reservation(orderId, sku, quantity, status, available);
        }
    }

    /// <summary>Puts a held reservation's items back on the shelf (a compensation).</summary>
    public Reservation? Release(Guid orderId)
    {
        lock (_lock)
        {
            if (!_reservations.TryGetValue(orderId, out var reservation) || reservation.Status != ReservationStatus.Held)
                return reservation; // nothing held: never reserved, refused, or already released
            _onHand[reservation.Sku] += reservation.Quantity;
            return _reservations[orderId] = reservation with { Status = ReservationStatus.Released };
        }
    }

    public Reservation? Find(Guid orderId)
    {
        lock (_lock) return _reservations.GetValueOrDefault(orderId);
    }

    /// <summary>SKUs whose stock does not add up: what left the shelf is not what is held.</summary>
    public IReadOnlyList<string> StockMismatches()
    {
        lock (_lock)
        {
            var held = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var r in _reservations.Values)
                if (r.Status == ReservationStatus.Held) held[r.Sku] = held.GetValueOrDefault(r.Sku) + r.Quantity;
            var mismatches = new List<string>();
            foreach (var (sku, initial) in _initial)
            {
                var taken = initial - _onHand[sku];
                if (taken != held.GetValueOrDefault(sku)) mismatches.Add($"{sku}: {taken} off the shelf, {held.GetValueOrDefault(sku)} held by reservations");
            }
            return mismatches;
        }
    }
}
