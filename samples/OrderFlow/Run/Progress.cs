using System.Diagnostics;
using System.Text;
using OrderFlow.OrderView;

namespace OrderFlow.Run;

/// <summary>Writes one progress line: orders placed, orders in a final state and how many are in
/// each, and the dead letters so far.</summary>
public sealed class Progress(TextWriter output, int orders)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public TimeSpan Elapsed => _clock.Elapsed;

    public void Write(int placed, IReadOnlyDictionary<OrderState, int> counts, int deadLetters)
    {
        var line = new StringBuilder();
        line.Append($"{_clock.Elapsed.TotalSeconds,6:F1} s  placed {placed,6}/{orders}  final {orders - counts[OrderState.InFlight],6}  |");
        foreach (var state in OrderStates.Final) line.Append($"  {state.Describe()} {counts[state]}");
        if (counts[OrderState.Inconsistent] > 0) line.Append($"  INCONSISTENT {counts[OrderState.Inconsistent]}");
        line.Append($"  | dead letters {deadLetters}");
        output.WriteLine(line.ToString());
    }
}
