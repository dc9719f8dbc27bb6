using System.Collections.Concurrent;
using Herald.Tests.Kit;
using Microsoft.Extensions.DependencyInjection;

namespace Herald.Tests.Consuming;

public sealed record MeterRead(string Meter, int Sequence);

public class ResumeTests
{
    private static Action<HeraldBuilder> Readings(string dir, ConcurrentQueue<int> handled, TaskCompletionSource? reachedHalf = null) => h =>
    {
        h.UseEmbedded(dir, Hosts.Fast);
        h.Topic("readings", partitions: 3);
        h.Event<MeterRead>("readings", e => e.Meter);
        h.Subscribe("billing", s =>
        {
            s.Options.MaxInFlight = 4;
            // A stop drains what was fetched (so a graceful stop repeats nothing); a small prefetch
            // keeps the stop in the middle of the stream.
            s.Options.PrefetchRecords = 32;
            s.Handle<MeterRead>(async (e, ctx, ct) =>
            {
                await Task.Delay(2, ct); // slow enough that the stop lands in the middle of the stream
                handled.Enqueue(e.Sequence);
                if (handled.Count >= 100) reachedHalf?.TrySetResult();
            });
        });
    };

    [Fact]
    public async Task After_a_graceful_stop_a_new_host_resumes_after_the_committed_offsets_without_loss_or_duplicates()
    {
        using var dir = new TempDirectory("resume");
        var first = new ConcurrentQueue<int>();
        var reachedHalf = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var host = await TestHost.StartAsync(dir.Path, Readings(dir.Path, first, reachedHalf));
        try
        {
            var publisher = host.Services.GetRequiredService<IEventPublisher>();
            for (var i = 0; i < 600; i++) await publisher.PublishAsync(new MeterRead($"meter-{i % 24}", i));
            await reachedHalf.Task.WaitAsync(TimeSpan.FromSeconds(10));
            await host.StopAsync();
        }
        finally
        {
            await host.DisposeHostAsync();
        }
        var firstRun = first.ToList();
        Assert.InRange(firstRun.Count, 100, 599); // part of the stream, or the test shows nothing

        var second = new ConcurrentQueue<int>();
        host = await TestHost.StartAsync(dir.Path, Readings(dir.Path, second));
        try
        {
            await TestHost.WaitUntilAsync(() => firstRun.Count + second.Count >= 600, TimeSpan.FromSeconds(15), "the rest of the 600 handled");
            await host.StopAsync();
        }
        finally
        {
            await host.DisposeHostAsync();
        }
        var all = firstRun.Concat(second).ToList();
        Assert.True(!firstRun.Intersect(second).Any(), $"first {firstRun.Count}, second {second.Count}, dup {string.Join(",", firstRun.Intersect(second).Take(20))}"); // nothing redelivered after a graceful stop
        Assert.Equal(Enumerable.Range(0, 600), all.Order());
    }
}
