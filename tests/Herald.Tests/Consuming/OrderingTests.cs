using System.Collections.Concurrent;
using CsCheck;
using Herald.Tests.Kit;
using Microsoft.Extensions.DependencyInjection;

namespace Herald.Tests.Consuming;

/// <summary>An event of a key, numbered in its key's publish order; <paramref name="Pause"/> says
/// how its handler completes: 0 synchronously, 1 after a yield, 2 and 3 after a 1 or 2 ms delay.</summary>
public sealed record StockMoved(string Sku, int Sequence, int Pause);

public class OrderingTests
{
    [Fact]
    public async Task Each_key_is_handled_in_publish_order_exactly_once_whatever_the_handler_timing()
    {
        var gen = Gen.Select(
            Gen.Int[1, 4],                                           // partitions
            Gen.Int[2, 16],                                          // MaxInFlight
            Gen.Select(Gen.Int[0, 9], Gen.Int[0, 3]).Array[1, 120]); // (key, pause) per event, in publish order
        await gen.SampleAsync(async (partitions, maxInFlight, events) =>
        {
            using var dir = new TempDirectory("ordering");
            var seen = new ConcurrentDictionary<string, List<int>>();
            var running = new ConcurrentDictionary<string, int>();
            var overlaps = 0;
            var handled = 0;
            var host = await TestHost.StartAsync(dir.Path, h =>
            {
                h.UseEmbedded(dir.Path, Hosts.Fast);
                h.Topic("stock", partitions);
                h.Event<StockMoved>("stock", e => e.Sku);
                h.Subscribe("warehouse", s =>
                {
                    s.Options.MaxInFlight = maxInFlight;
                    s.Handle<StockMoved>(async (e, ctx, ct) =>
                    {
                        if (running.AddOrUpdate(e.Sku, 1, (_, n) => n + 1) > 1) Interlocked.Increment(ref overlaps);
                        var list = seen.GetOrAdd(e.Sku, _ => []);
                        lock (list) list.Add(e.Sequence);
                        switch (e.Pause)
                        {
                            case 1: await Task.Yield(); break;
                            case 2: await Task.Delay(1, ct); break;
                            case 3: await Task.Delay(2, ct); break;
                        }
                        running.AddOrUpdate(e.Sku, 0, (_, n) => n - 1);
                        Interlocked.Increment(ref handled);
                    });
                });
            });
            var published = new Dictionary<string, int>();
            try
            {
                var publisher = host.Services.GetRequiredService<IEventPublisher>();
                foreach (var (key, pause) in events)
                {
                    var sku = $"sku-{key}";
                    var sequence = published.GetValueOrDefault(sku);
                    published[sku] = sequence + 1;
                    await publisher.PublishAsync(new StockMoved(sku, sequence, pause));
                }
                await TestHost.WaitUntilAsync(() => Volatile.Read(ref handled) >= events.Length, TimeSpan.FromSeconds(10), $"{events.Length} handled");
                await host.StopAsync();
            }
            finally
            {
                await host.DisposeHostAsync();
            }
            Assert.Equal(0, overlaps);
            Assert.Equal(events.Length, handled);
            Assert.Equal(published.Keys.Order(), seen.Keys.Order());
            foreach (var (sku, count) in published) Assert.Equal(Enumerable.Range(0, count), seen[sku]);
        }, iter: 12, threads: 1);
    }

    [Fact]
    public async Task Different_keys_run_concurrently_up_to_MaxInFlight_and_one_key_never_does()
    {
        using var dir = new TempDirectory("ordering");
        const int maxInFlight = 3;
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var running = 0;
        var most = 0;
        var handled = 0;
        var perKey = new ConcurrentDictionary<string, int>();
        var sameKeyOverlaps = 0;
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseEmbedded(dir.Path, Hosts.Fast);
            h.Topic("stock", partitions: 2);
            h.Event<StockMoved>("stock", e => e.Sku);
            h.Subscribe("warehouse", s =>
            {
                s.Options.MaxInFlight = maxInFlight;
                s.Handle<StockMoved>(async (e, ctx, ct) =>
                {
                    if (perKey.AddOrUpdate(e.Sku, 1, (_, n) => n + 1) > 1) Interlocked.Increment(ref sameKeyOverlaps);
                    var now = Interlocked.Increment(ref running);
                    int seen;
                    while (now > (seen = Volatile.Read(ref most)) && Interlocked.CompareExchange(ref most, now, seen) != seen) { }
                    await release.Task.WaitAsync(ct); // held until the test has seen handlers overlap
                    Interlocked.Decrement(ref running);
                    perKey.AddOrUpdate(e.Sku, 0, (_, n) => n - 1);
                    Interlocked.Increment(ref handled);
                });
            });
        });
        try
        {
            var publisher = host.Services.GetRequiredService<IEventPublisher>();
            for (var i = 0; i < 40; i++) await publisher.PublishAsync(new StockMoved($"sku-{i % 8}", i / 8, 0));
            // A serial dispatcher would hold the first handler forever: this wait would time out.
            await TestHost.WaitUntilAsync(() => Volatile.Read(ref running) == maxInFlight, TimeSpan.FromSeconds(10), $"{maxInFlight} handlers running at once");
            release.SetResult();
            await TestHost.WaitUntilAsync(() => Volatile.Read(ref handled) == 40, TimeSpan.FromSeconds(10), "40 handled");
            await host.StopAsync();
        }
        finally
        {
            release.TrySetResult();
            await host.DisposeHostAsync();
        }
        Assert.Equal(maxInFlight, most);
        Assert.Equal(0, sameKeyOverlaps);
    }
}
