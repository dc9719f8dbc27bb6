using System.Collections.Concurrent;

namespace OrderFlow.OrderView;

/// <summary>The order view's read model: for each order placed by this run, the facts seen so far.
/// Events of orders it does not know (say, from an earlier run in the same data directory) are
/// ignored.</summary>
public sealed class OrderBoard
{
    private readonly ConcurrentDictionary<Guid, Entry> _orders = new();

    private sealed class Entry(OrderState expected)
    {
        public readonly OrderState Expected = expected;
        public int Facts;
        public Arrival? Placed;
    }

    /// <summary>How an order's OrderPlaced reached the view: the version it was written at
    /// (<see cref="Herald.Envelope.DataVersion"/>; 1 means the old shop wrote it and it was upcast)
    /// and the currency the handler got.</summary>
    public sealed record Arrival(int WrittenVersion, string Currency);

    /// <summary>Starts tracking an order before it is placed, with the final state its scenario should reach.</summary>
    public void Track(Guid orderId, OrderState expected)
    {
        if (!_orders.TryAdd(orderId, new Entry(expected))) throw new InvalidOperationException($"order {orderId} is tracked twice");
    }

    /// <summary>Records a fact; a duplicate (at-least-once delivery) changes nothing.</summary>
    public void Record(Guid orderId, OrderFacts fact)
    {
        if (_orders.TryGetValue(orderId, out var entry)) Interlocked.Or(ref entry.Facts, (int)fact);
    }

    /// <summary>Records how the order's OrderPlaced arrived (the first delivery's; a redelivery is the same record).</summary>
    public void RecordPlaced(Guid orderId, int writtenVersion, string currency)
    {
        if (_orders.TryGetValue(orderId, out var entry)) Interlocked.CompareExchange(ref entry.Placed, new Arrival(writtenVersion, currency), null);
        Record(orderId, OrderFacts.Placed);
    }

    public bool IsTracked(Guid orderId) => _orders.ContainsKey(orderId);

    public int Count => _orders.Count;

    public IEnumerable<TrackedOrder> Orders
    {
        get
        {
            foreach (var (id, entry) in _orders)
            {
                var facts = (OrderFacts)Volatile.Read(ref entry.Facts);
                yield return new TrackedOrder(id, facts, OrderStates.Classify(facts), entry.Expected, Volatile.Read(ref entry.Placed));
            }
        }
    }

    /// <summary>How many orders are in each state.</summary>
    public Dictionary<OrderState, int> CountByState()
    {
        var counts = Enum.GetValues<OrderState>().ToDictionary(s => s, _ => 0);
        foreach (var order in Orders) counts[order.State]++;
        return counts;
    }
}

public readonly record struct TrackedOrder(Guid OrderId, OrderFacts Facts, OrderState State, OrderState Expected, OrderBoard.Arrival? Placed = null);
