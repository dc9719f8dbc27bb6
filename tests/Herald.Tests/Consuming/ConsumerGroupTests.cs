using System.Collections.Concurrent;
using Herald.Embedded;
using Herald.Log;
using Herald.Tests.Kit;
using Herald.Transport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Herald.Tests.Consuming;

public sealed record SeatBooked(string Flight, int Number);

public class ConsumerGroupTests
{
    private sealed record Handling(string Member, int Partition, long Offset, int Number);

    private static Action<HeraldBuilder> Booking(Func<IServiceProvider, ITransport> transport, string group, ConcurrentQueue<Handling> handled, string member) => h =>
    {
        h.UseTransport(transport);
        h.Topic("seats", partitions: 4);
        h.Event<SeatBooked>("seats", e => e.Flight);
        h.Subscribe(group, s => s.Handle<SeatBooked>(async (e, ctx, ct) =>
        {
            await Task.Yield();
            handled.Enqueue(new Handling(member, ctx.Envelope.Partition, ctx.Envelope.Offset, e.Number));
        }));
    };

    private static async Task PublishAsync(IHost host, int from, int count)
    {
        var publisher = host.Services.GetRequiredService<IEventPublisher>();
        var tasks = new List<Task>();
        for (var i = from; i < from + count; i++) tasks.Add(publisher.PublishAsync(new SeatBooked($"flight-{i % 16}", i)).AsTask());
        await Task.WhenAll(tasks);
    }

    /// <summary>Waits until the group's members own disjoint shares of the topic's partitions that cover it.</summary>
    private static Task SettledAsync(ObservingTransport transport, string group, int members) =>
        TestHost.WaitUntilAsync(() =>
        {
            var active = transport.Members.Where(m => m.Group == group && !m.Left).ToList();
            if (active.Count != members) return false;
            var shares = active.Select(m => m.Partitions("seats")).ToList();
            return shares.All(s => s.Length > 0) && shares.Sum(s => s.Length) == 4 && shares.SelectMany(s => s).Distinct().Count() == 4;
        }, TimeSpan.FromSeconds(10), $"{members} members of '{group}' sharing 4 partitions");

    [Fact]
    public async Task Every_group_gets_every_event()
    {
        using var dir = new TempDirectory("groups");
        var billing = new ConcurrentQueue<int>();
        var shipping = new ConcurrentQueue<int>();
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseEmbedded(dir.Path, Hosts.Fast);
            h.Topic("seats", partitions: 4);
            h.Event<SeatBooked>("seats", e => e.Flight);
            h.Subscribe("billing", s => s.Handle<SeatBooked>((e, ctx, ct) => { billing.Enqueue(e.Number); return ValueTask.CompletedTask; }));
            h.Subscribe("shipping", s => s.Handle<SeatBooked>(async (e, ctx, ct) => { await Task.Yield(); shipping.Enqueue(e.Number); }));
        });
        try
        {
            await PublishAsync(host, 0, 200);
            await TestHost.WaitUntilAsync(() => billing.Count >= 200 && shipping.Count >= 200, TimeSpan.FromSeconds(10), "both groups handled 200");
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
        Assert.Equal(Enumerable.Range(0, 200), billing.Order());
        Assert.Equal(Enumerable.Range(0, 200), shipping.Order());
    }

    [Fact]
    public async Task Two_members_of_a_group_split_the_partitions_and_handle_each_event_once()
    {
        using var dir = new TempDirectory("groups");
        await using var log = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        var transport = new ObservingTransport(new EmbeddedTransport(log, ownsLog: false));
        var handled = new ConcurrentQueue<Handling>();
        var a = await TestHost.StartAsync(dir.Path, Booking(_ => transport, "bookings", handled, "a"));
        var b = await TestHost.StartAsync(dir.Path, Booking(_ => transport, "bookings", handled, "b"));
        try
        {
            await SettledAsync(transport, "bookings", members: 2);
            await PublishAsync(a, 0, 400);
            await TestHost.WaitUntilAsync(() => handled.Count >= 400, TimeSpan.FromSeconds(10), "400 handled");
            await b.StopAsync();
            await a.StopAsync();
        }
        finally
        {
            await b.DisposeHostAsync();
            await a.DisposeHostAsync();
        }
        var all = handled.ToList();
        Assert.Equal(Enumerable.Range(0, 400), all.Select(h => h.Number).Order());
        Assert.Contains(all, h => h.Member == "a");
        Assert.Contains(all, h => h.Member == "b");
        foreach (var partition in all.GroupBy(h => h.Partition))
            Assert.Single(partition.Select(h => h.Member).Distinct());
    }

    [Fact]
    public async Task Two_hosts_each_with_its_own_transport_over_one_log_still_form_one_group()
    {
        // h.UseTransport(sp => new EmbeddedTransport(log, ownsLog: false)) in each host: the log,
        // and with it the group's committed offsets, is shared, so its members must share partitions too.
        using var dir = new TempDirectory("groups");
        await using var log = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        var handled = new ConcurrentQueue<Handling>();
        var a = await TestHost.StartAsync(dir.Path, Booking(_ => new EmbeddedTransport(log, ownsLog: false), "bookings", handled, "a"));
        var b = await TestHost.StartAsync(dir.Path, Booking(_ => new EmbeddedTransport(log, ownsLog: false), "bookings", handled, "b"));
        try
        {
            await PublishAsync(a, 0, 200);
            await TestHost.WaitUntilAsync(() => handled.Count >= 200, TimeSpan.FromSeconds(10), "200 handled");
            await a.StopAsync();
            await b.StopAsync();
        }
        finally
        {
            await b.DisposeHostAsync();
            await a.DisposeHostAsync();
        }
        var numbers = handled.Select(h => h.Number).ToList();
        Assert.True(numbers.Count == 200, $"{numbers.Count} handlings of 200 events: both hosts consumed {string.Join(", ", handled.GroupBy(h => h.Member).Select(g => $"{g.Key}: {g.Count()}"))}");
        Assert.Equal(Enumerable.Range(0, 200), numbers.Order());
    }

    [Fact]
    public async Task When_a_member_leaves_the_other_takes_over_its_partitions_and_nothing_is_lost()
    {
        using var dir = new TempDirectory("groups");
        await using var log = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        var transport = new ObservingTransport(new EmbeddedTransport(log, ownsLog: false));
        var handled = new ConcurrentQueue<Handling>();
        var a = await TestHost.StartAsync(dir.Path, Booking(_ => transport, "bookings", handled, "a"));
        var b = await TestHost.StartAsync(dir.Path, Booking(_ => transport, "bookings", handled, "b"));
        try
        {
            await SettledAsync(transport, "bookings", members: 2);
            await PublishAsync(a, 0, 200);
            await TestHost.WaitUntilAsync(() => handled.Count >= 200, TimeSpan.FromSeconds(10), "the first 200 handled");
            var bPartitions = handled.Where(h => h.Member == "b").Select(h => h.Partition).Distinct().ToList();
            Assert.NotEmpty(bPartitions);

            // b leaves while events keep coming: some are published before it has gone.
            var more = PublishAsync(a, 200, 200);
            await b.StopAsync();
            await more;
            await SettledAsync(transport, "bookings", members: 1);
            await PublishAsync(a, 400, 200);
            await TestHost.WaitUntilAsync(() => handled.Select(h => h.Number).Distinct().Count() >= 600, TimeSpan.FromSeconds(10), "600 distinct events handled");
            await a.StopAsync();

            var all = handled.ToList();
            Assert.Equal(Enumerable.Range(0, 600), all.Select(h => h.Number).Distinct().Order());
            // Graceful handover: b committed what it handled before leaving, so a repeats none of it.
            Assert.Equal(600, all.Count);
            Assert.All(bPartitions, p => Assert.Contains(all, h => h.Member == "a" && h.Partition == p && h.Number >= 400));
        }
        finally
        {
            await b.DisposeHostAsync();
            await a.DisposeHostAsync();
        }
    }

    [Fact]
    public async Task A_new_group_starting_from_latest_gets_the_events_published_once_its_host_has_started()
    {
        // "Latest": records published after the group first starts. Once StartAsync has returned
        // the group has started, so nothing published from then on may be skipped, even when the
        // consumer is slow to make its first fetch (held here until the events are out, or for 2 s
        // at most, so that a StartAsync that waits for the first assignment passes too).
        using var dir = new TempDirectory("groups");
        await using var log = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        var published = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var transport = new ObservingTransport(new EmbeddedTransport(log, ownsLog: false))
        {
            FirstFetchGate = Task.WhenAny(published.Task, Task.Delay(TimeSpan.FromSeconds(2))),
        };
        var late = new ConcurrentQueue<int>();
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseTransport(_ => transport);
            h.Topic("seats", partitions: 4);
            h.Event<SeatBooked>("seats", e => e.Flight);
            h.Subscribe("from-latest", s =>
            {
                s.Options.StartFrom = StartFrom.Latest;
                s.Handle<SeatBooked>((e, ctx, ct) => { late.Enqueue(e.Number); return ValueTask.CompletedTask; });
            });
        });
        try
        {
            await PublishAsync(host, 0, 50);
            published.SetResult();
            await TestHost.WaitUntilAsync(() => late.Count >= 50, TimeSpan.FromSeconds(5), $"50 handled (have {late.Count}: {string.Join(",", late.Order())})");
        }
        finally
        {
            published.TrySetResult();
            await host.StopAndDisposeAsync();
        }
        Assert.Equal(Enumerable.Range(0, 50), late.Order());
    }

    [Fact]
    public async Task A_new_group_starting_from_latest_skips_earlier_events_and_one_from_earliest_reads_them()
    {
        using var dir = new TempDirectory("groups");
        await using var log = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        var transport = new ObservingTransport(new EmbeddedTransport(log, ownsLog: false));
        var producer = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseTransport(_ => transport);
            h.Topic("seats", partitions: 1);
            h.Event<SeatBooked>("seats", e => e.Flight);
        });
        var early = new ConcurrentQueue<int>();
        var late = new ConcurrentQueue<int>();
        IHost? consumers = null;
        try
        {
            await PublishAsync(producer, 0, 20);
            consumers = await TestHost.StartAsync(dir.Path, h =>
            {
                h.UseTransport(_ => transport);
                h.Topic("seats", partitions: 1);
                h.Event<SeatBooked>("seats", e => e.Flight);
                h.Subscribe("from-earliest", s =>
                {
                    s.Options.StartFrom = StartFrom.Earliest;
                    s.Handle<SeatBooked>((e, ctx, ct) => { early.Enqueue(e.Number); return ValueTask.CompletedTask; });
                });
                h.Subscribe("from-latest", s =>
                {
                    s.Options.StartFrom = StartFrom.Latest;
                    s.Handle<SeatBooked>((e, ctx, ct) => { late.Enqueue(e.Number); return ValueTask.CompletedTask; });
                });
            });
            // "Latest" is where the group stands when it first gets the partition.
            await TestHost.WaitUntilAsync(() => transport.Members.Any(m => m.Group == "from-latest" && m.Partitions("seats").Length == 1), TimeSpan.FromSeconds(10), "from-latest assigned");
            await PublishAsync(producer, 20, 5);
            // One partition, read in offset order: once 20..24 are handled, anything earlier would have been too.
            await TestHost.WaitUntilAsync(() => early.Count >= 25 && late.Count >= 5, TimeSpan.FromSeconds(10), "25 handled from earliest and 5 from latest");
        }
        finally
        {
            if (consumers is not null) await consumers.StopAndDisposeAsync();
            await producer.StopAndDisposeAsync();
        }
        Assert.Equal(Enumerable.Range(0, 25), early);
        Assert.Equal(Enumerable.Range(20, 5), late);
    }
}
