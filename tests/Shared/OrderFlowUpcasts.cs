using OrderFlow;
using OrderFlow.OrderView;

namespace Herald.Testing;

/// <summary>What every OrderFlow run must show of event versioning, whatever the transport and the
/// store: the old shop's orders, written as OrderPlaced version 1, reached the handlers upcast to
/// version 2 with the upcaster's currency, and then the final states their scenarios predict.</summary>
internal static class OrderFlowUpcasts
{
    public static void AssertUpcastAndFinal(OrderFlowSummary summary)
    {
        Assert.True(summary.PlacedByOldShop > 0, "the run gave the old shop no orders");
        Assert.Equal(summary.PlacedByOldShop, summary.Upcast);
        Assert.Equal(summary.Orders - summary.PlacedByOldShop, summary.ArrivedAsVersion2);
        Assert.Equal(new Dictionary<string, int> { [OrderPlacedV1.Currency] = summary.Upcast }, summary.UpcastCurrencies);
        foreach (var state in OrderStates.Final) Assert.Equal(summary.OldShopExpected[state], summary.UpcastCounts[state]);
        Assert.Equal(summary.Upcast, OrderStates.Final.Sum(s => summary.UpcastCounts[s]));
    }
}
