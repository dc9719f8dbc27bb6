using System.Collections.Concurrent;
using Herald.DeadLetters;
using Microsoft.Extensions.DependencyInjection;

namespace Herald.Tests;

public sealed record OrderPlaced(Guid OrderId, string Customer, int Sequence);

public class SmokeTests
{
    [Fact]
    public async Task Published_events_reach_the_handler_in_key_order()
    {
        using var dir = new TempDirectory();
        var seen = new ConcurrentDictionary<string, List<int>>();
        var count = 0;
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.Topic("orders", partitions: 2);
            h.Event<OrderPlaced>("orders", e => e.Customer);
            h.Subscribe("billing", s => s.Handle<OrderPlaced>(async (e, ctx, ct) =>
            {
                await Task.Yield();
                var list = seen.GetOrAdd(e.Customer, _ => []);
                lock (list) list.Add(e.Sequence);
                Interlocked.Increment(ref count);
            }));
        });
        try
        {
            var publisher = host.Services.GetRequiredService<IEventPublisher>();
            var tasks = new List<Task>();
            for (var i = 0; i < 1000; i++) tasks.Add(publisher.PublishAsync(new OrderPlaced(Guid.NewGuid(), $"c{i % 7}", i / 7)).AsTask());
            await Task.WhenAll(tasks);
            await TestHost.WaitUntilAsync(() => Volatile.Read(ref count) == 1000, what: "1000 handled");
            foreach (var (customer, list) in seen) Assert.Equal(list.Order().ToList(), list);
        }
        finally
        {
            await host.StopAsync();
            host.Dispose();
        }
    }

    [Fact]
    public async Task A_failing_event_is_dead_lettered_and_its_key_parked()
    {
        using var dir = new TempDirectory();
        var handled = new ConcurrentQueue<int>();
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.Event<OrderPlaced>("orders", e => e.Customer);
            h.Subscribe("billing", s =>
            {
                s.Options.Retry.ImmediateRetries = 1;
                s.Options.Retry.Backoff = TimeSpan.FromMilliseconds(1);
                s.Options.Retry.Delayed = [TimeSpan.FromMilliseconds(50)];
                s.Handle<OrderPlaced>((e, ctx, ct) =>
                {
                    if (e.Sequence == 3 && e.Customer == "bad") throw new InvalidOperationException("boom");
                    handled.Enqueue(e.Sequence);
                    return ValueTask.CompletedTask;
                });
            });
        });
        try
        {
            var publisher = host.Services.GetRequiredService<IEventPublisher>();
            for (var i = 0; i < 6; i++)
            {
                await publisher.PublishAsync(new OrderPlaced(Guid.NewGuid(), "bad", i));
                await publisher.PublishAsync(new OrderPlaced(Guid.NewGuid(), "good", i));
            }
            var dlq = host.Services.GetRequiredService<DeadLetterQueue>();
            await TestHost.WaitUntilAsync(() => handled.Count == 9, TimeSpan.FromSeconds(5), what: $"9 handled (have {string.Join(",", handled)})");
            IReadOnlyList<DeadLetter> letters = [];
            await TestHost.WaitUntilAsync(() => (letters = dlq.ListAsync("orders", "billing").GetAwaiter().GetResult()).Count == 3, what: "3 dead letters");
            Assert.Equal(DeadLetterReason.Failed, letters[0].Reason);
            Assert.Equal(4, letters[0].Attempts); // (1 + 1 immediate retry) in the first pass and again in the one delayed round
            Assert.Equal(typeof(InvalidOperationException).FullName, letters[0].ExceptionType);
            Assert.All(letters.Skip(1), l => Assert.Equal(DeadLetterReason.Parked, l.Reason));
        }
        finally
        {
            await host.StopAsync();
            host.Dispose();
        }
    }
}
