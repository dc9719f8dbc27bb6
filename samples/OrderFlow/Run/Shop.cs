using Herald;

namespace OrderFlow.Run;

/// <summary>The shop: places the planned orders, up to 64 at a time. Each publish completes once
/// the event is durable (fsynced), so <see cref="Placed"/> counts orders that cannot be lost.</summary>
public sealed class Shop(IEventPublisher publisher)
{
    private int _placed;

    public int Placed => Volatile.Read(ref _placed);

    public Task PlaceAsync(IEnumerable<PlannedOrder> plan, CancellationToken cancellationToken) =>
        Parallel.ForEachAsync(plan, new ParallelOptions { MaxDegreeOfParallelism = 64, CancellationToken = cancellationToken }, async (planned, ct) =>
        {
            await publisher.PublishAsync(planned.Order, cancellationToken: ct);
            Interlocked.Increment(ref _placed);
        });
}
