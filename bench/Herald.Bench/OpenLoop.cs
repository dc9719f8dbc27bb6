using System.Diagnostics;

namespace Herald.Bench;

/// <summary>An open-loop run: a generator thread issues item i at its due time (recording due and
/// start times) and never waits for completions; one async collector awaits the items in order,
/// so the harness allocates nothing per item. Shared by the latency scenarios.</summary>
public static class OpenLoop
{
    /// <summary>Issues <paramref name="total"/> items with <paramref name="issue"/> on the pacer's
    /// schedule and awaits each with <paramref name="collect"/>, in order; completes when every item
    /// was collected.</summary>
    public static async Task RunAsync<T>(int total, Pacer pacer, LatencyRecorder recorder, Func<int, T> issue, Func<int, T, ValueTask> collect)
    {
        var issued = new T[total];
        var signal = new IssueSignal();
        var collector = Task.Run(async () =>
        {
            for (var i = 0; i < total; i++)
            {
                await signal.WaitIssuedAsync(i);
                await collect(i, issued[i]);
                issued[i] = default!;
            }
        });
        var generator = new Thread(() =>
        {
            pacer.Start();
            for (var i = 0; i < total; i++)
            {
                recorder.Dues[i] = pacer.WaitUntilDue(i);
                recorder.Starts[i] = Stopwatch.GetTimestamp();
                issued[i] = issue(i);
                signal.Issued(i + 1);
            }
        })
        { Name = "bench generator", IsBackground = true };
        generator.Start();
        await collector.WaitAsync(TimeSpan.FromMinutes(10));
        generator.Join();
    }
}
