using Herald.Internal.Pipeline;

namespace Herald.Tests.Consuming;

public class PrefetchBudgetTests
{
    [Fact]
    public void Release_reports_the_release_that_makes_a_full_budget_usable_again()
    {
        var budget = new PrefetchBudget(100, 1 << 20); // room again at 75 records or fewer
        budget.Take(90, 900);
        Assert.False(budget.HasRoom);
        Assert.False(budget.Release(10, 100)); // 80: still full
        Assert.True(budget.Release(10, 100));  // 70: usable again
        Assert.False(budget.Release(10, 100)); // already usable
        Assert.True(budget.HasRoom);
    }

    [Fact]
    public void Release_reports_a_budget_full_on_bytes_once_both_records_and_bytes_have_room()
    {
        var budget = new PrefetchBudget(100, 1000); // room again at 75 records and 750 bytes or fewer
        budget.Take(90, 990);
        Assert.False(budget.Release(20, 100)); // 70 records but 890 bytes: still full
        Assert.True(budget.Release(0, 200));   // 690 bytes
    }

    /// <summary>The fetch loop takes room after a fetch and waits once the budget is full; the
    /// dispatcher releases room on another thread and wakes the fetch loop when its release made
    /// the budget usable. A release racing with a take must never leave the fetch loop waiting on
    /// an empty budget (seen in the pipeline benchmark: the release read "not full" just before
    /// a take filled the budget, subtracted after it, and woke no one).</summary>
    [Fact]
    public void A_release_racing_with_a_take_never_leaves_the_fetcher_waiting_on_a_budget_with_room()
    {
        const int Max = 64;
        var budget = new PrefetchBudget(Max, long.MaxValue / 2);
        var handedOver = new System.Collections.Concurrent.ConcurrentQueue<int>();
        // As the runner does: the fetcher reads the current wake before looking at the budget, and
        // a wake replaces it and completes the old one.
        var wake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var until = DateTime.UtcNow.AddSeconds(2);
        var stalls = 0;
        var rounds = 0L;

        // Threads of their own, not pool threads: a wake must not wait for the pool to grow.
        var releaser = new Thread(() =>
        {
            while (DateTime.UtcNow < until)
            {
                var released = 0;
                while (handedOver.TryDequeue(out var n)) released += n;
                if (released > 0 && budget.Release(released, released))
                    Interlocked.Exchange(ref wake, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
                else Thread.SpinWait(20);
            }
        });
        var fetcher = new Thread(() =>
        {
            var random = new Random(7);
            while (DateTime.UtcNow < until)
            {
                var woken = Volatile.Read(ref wake).Task;
                if (budget.HasRoom)
                {
                    var n = random.Next(1, 24);
                    budget.Take(n, n);
                    handedOver.Enqueue(n);
                    rounds++;
                    continue;
                }
                // Full: wait to be woken. A wake that never comes while the budget has room is the bug.
                if (!woken.Wait(TimeSpan.FromSeconds(1)) && budget.HasRoom && DateTime.UtcNow < until)
                {
                    stalls++;
                    return;
                }
            }
        });
        releaser.Start();
        fetcher.Start();
        Assert.True(fetcher.Join(TimeSpan.FromSeconds(30)) && releaser.Join(TimeSpan.FromSeconds(30)), "the threads did not finish");
        Assert.Equal(0, stalls);
        Assert.True(rounds > 1000, $"only {rounds} takes: the race was hardly exercised");
    }
}
