using Herald.Outbox;
using OrderFlow.Services;

namespace OrderFlow.Run;

/// <summary>The shop: places the planned orders, up to 64 at a time. Each order is one transaction
/// on the shop's database: the order's row and its OrderPlaced event in the outbox, committed
/// together; the relay publishes the event once it has committed. The orders the plan gives the
/// old shop (the shop's previous release, on the same database) go through its outbox as
/// OrderPlaced version 1, without a currency. <see cref="Placed"/> counts the committed orders,
/// which cannot be lost.</summary>
public sealed class Shop(TransactionalOutbox outbox, TransactionalOutbox oldShop)
{
    public const string Schema = """
        CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, customer TEXT NOT NULL, sku TEXT NOT NULL, quantity BIGINT NOT NULL, amount_cents BIGINT NOT NULL);
        """;

    private int _placed;

    public int Placed => Volatile.Read(ref _placed);

    public Task PlaceAsync(IEnumerable<PlannedOrder> plan, CancellationToken cancellationToken) =>
        Parallel.ForEachAsync(plan, new ParallelOptions { MaxDegreeOfParallelism = 64, CancellationToken = cancellationToken }, async (planned, ct) =>
        {
            var order = planned.Order;
            await using var tx = await (planned.ByOldShop ? oldShop : outbox).BeginAsync(ct);
            await Sql.ExecuteAsync(tx.Connection, tx.Transaction, "INSERT INTO orders (order_id, customer, sku, quantity, amount_cents) VALUES (@id, @customer, @sku, @q, @cents)",
                ct, ("@id", order.OrderId.ToString()), ("@customer", order.Customer), ("@sku", order.Sku), ("@q", (long)order.Quantity), ("@cents", Sql.Cents(order.Amount)));
            if (planned.ByOldShop) await tx.PublishAsync(order.AsVersion1(), cancellationToken: ct);
            else await tx.PublishAsync(order, cancellationToken: ct);
            await tx.CommitAsync(ct);
            Interlocked.Increment(ref _placed);
        });
}
