// OrderFlow: an order-processing choreography on Herald, in one process. Orders are placed; the
// inventory service reserves stock or reports it sold out; the payment service charges or is
// declined; the shipping service books a shipment or cannot. Failures publish compensating events
// (stock released, payment refunded), and a payment that throws every time ends in a dead-letter
// topic. Each service keeps its state in a database of its own, with Herald's outbox and inbox
// beside it. A projection follows every order to its final state, and the run ends with a summary
// that must add up. Usage: dotnet run --project samples/OrderFlow [-- --help]
using OrderFlow;

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(OrderFlowOptions.Usage);
    return 0;
}
OrderFlowOptions options;
try
{
    options = OrderFlowOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(OrderFlowOptions.Usage);
    return 2;
}

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true; // stop the run and print what it reached
    stop.Cancel();
};
var summary = await OrderFlowApp.RunAsync(options, Console.Out, stop.Token);
return summary.AddsUp ? 0 : 1;
