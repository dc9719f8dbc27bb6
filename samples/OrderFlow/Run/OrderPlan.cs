using OrderFlow.OrderView;
using OrderFlow.Shipping;

namespace OrderFlow.Run;

/// <summary>An order to place, the final state its scenario leads to, and whether the old shop
/// places it (as OrderPlaced version 1, which consumers upcast to version 2 with "USD").</summary>
public sealed record PlannedOrder(OrderPlaced Order, OrderState Expected, bool ByOldShop = false);

/// <summary>Makes the orders of a run: exact shares of each scenario (a declined card, a malformed
/// card token, a sold-out item, an address no carrier serves), shuffled by the seed, and an exact
/// share placed by the old shop, drawn independently of the scenarios.</summary>
public static class OrderPlan
{
    public const string ApprovedCard = "card-4242";
    public const string DeclinedCard = "card-0002";
    public const string MalformedCard = "card-4x42"; // the payment gateway throws on it, every time

    public const string SoldOutSku = "retro-console";

    /// <summary>What the new shop sells in (the old shop's orders are in <see cref="OrderPlacedV1.Currency"/>).</summary>
    public const string Currency = "USD";

    private static readonly (string Sku, decimal Price)[] Products =
        [("desk-lamp", 39.90m), ("kettle", 24.50m), ("headphones", 89.00m), ("backpack", 54.00m), ("houseplant", 12.00m)];

    private static readonly string[] Cities = ["Lisbon", "Oslo", "Kyoto", "Lima", "Nairobi", "Toronto", "Hobart"];

    /// <summary>The warehouse's opening stock: plenty of everything but the sold-out item.</summary>
    public static Dictionary<string, int> OpeningStock(int orders)
    {
        var stock = new Dictionary<string, int>(StringComparer.Ordinal) { [SoldOutSku] = 0 };
        foreach (var (sku, _) in Products) stock[sku] = orders * 3;
        return stock;
    }

    public static List<PlannedOrder> Make(OrderFlowOptions options)
    {
        var random = new Random(options.Seed);
        var fates = new OrderState[options.Orders];
        var next = 0;
        foreach (var (state, rate) in new[]
                 {
                     (OrderState.DeadLettered, options.PoisonRate),
                     (OrderState.OutOfStock, options.OutOfStockRate),
                     (OrderState.Declined, options.DeclineRate),
                     (OrderState.Refunded, options.UndeliverableRate),
                 })
        {
            var count = Math.Min((int)Math.Round(options.Orders * rate), options.Orders - next);
            fates.AsSpan(next, count).Fill(state);
            next += count;
        }
        fates.AsSpan(next).Fill(OrderState.Shipped);
        random.Shuffle(fates);

        var orders = new List<PlannedOrder>(options.Orders);
        foreach (var fate in fates)
        {
            var (sku, price) = fate == OrderState.OutOfStock ? (SoldOutSku, 299.00m) : Products[random.Next(Products.Length)];
            var quantity = random.Next(1, 4);
            var card = fate switch
            {
                OrderState.Declined => DeclinedCard,
                OrderState.DeadLettered => MalformedCard,
                _ => ApprovedCard,
            };
            var shipTo = fate == OrderState.Refunded ? Carrier.Undeliverable : Cities[random.Next(Cities.Length)];
            var order = new OrderPlaced(Guid.CreateVersion7(), $"customer-{random.Next(1, 1000):D3}", sku, quantity, price * quantity, card, shipTo, Currency);
            orders.Add(new PlannedOrder(order, fate));
        }

        // Drawn after the scenarios, so that a seed gives the same orders whatever the old shop's share.
        var byOldShop = new bool[options.Orders];
        byOldShop.AsSpan(0, (int)Math.Round(options.Orders * options.OldShopRate)).Fill(true);
        random.Shuffle(byOldShop);
        // An old shop's order reaches the handlers in the currency the upcaster gives it.
        for (var i = 0; i < orders.Count; i++)
            if (byOldShop[i]) orders[i] = orders[i] with { Order = orders[i].Order with { Currency = OrderPlacedV1.Currency }, ByOldShop = true };
        return orders;
    }
}
