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
    }

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

    public bool IsTracked(Guid orderId) => _orders.ContainsKey(orderId);

    public int Count => _orders.Count;

    public IEnumerable<TrackedOrder> Orders
    {
        get
        {
            foreach (var (id, entry) in _orders)
            {
                var facts = (OrderFacts)Volatile.Read(ref entry.Facts);
                yield return new TrackedOrder(id, facts, OrderStates.Classify(facts), entry.Expected);
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

public readonly record struct TrackedOrder(Guid OrderId, OrderFacts Facts, OrderState State, OrderState Expected);
