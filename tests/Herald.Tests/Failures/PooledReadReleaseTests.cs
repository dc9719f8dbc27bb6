using System.Collections.Concurrent;
using Herald.Embedded;
using Herald.Hosting;
using Herald.Internal.Pipeline;
using Herald.Log;
using Herald.Tests.Kit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Herald.Tests.Failures;

/// <summary>Every path that lets go of a consumed record (finished, retried, dead-lettered, parked,
/// dropped at a revoke or before it started) releases its pooled read exactly once: a read released
/// once too often throws (EmbeddedConsumer.ReadLease), which fails the dispatcher or the fetch loop
/// and shows as the runner's LastError.</summary>
public class PooledReadReleaseTests
{
    private const string Group = "g";

    private static SubscriptionRunner Runner(IHost host) =>
        host.Services.GetServices<IHostedService>().OfType<HeraldHostedService>().Single().Runners[0];

    [Fact]
    public async Task A_long_run_with_retries_dead_letters_and_rebalances_releases_every_pooled_read_once()
    {
        using var dir = new TempDirectory("release");
        await using var log = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        var calls = new CallLog();
        // Accounts bad-*: always fail (dead-lettered, later events parked behind). Others: some events
        // fail once (an immediate retry), some three times (a delayed retry, the key's next events
        // detached or queued behind it).
        bool Fails(Charge c, int invocation) =>
            c.Account.StartsWith("bad-", StringComparison.Ordinal)
            || (c.Seq % 10 == 3 && invocation == 1)
            || (c.Seq % 10 == 7 && invocation <= 3);
        var options = Fast.Retry(1, 5, 20).Then(o =>
        {
            o.MaxInFlight = 8;
            o.PrefetchRecords = 150;
            o.PrefetchBytes = 64 * 1024;
        });
        async ValueTask Handle(Charge c, EventContext ctx)
        {
            if (c.Seq % 3 == 0) await Task.Yield();
            await calls.Handle(c, ctx, Fails);
        }
        Task<IHost> StartMemberAsync() => TestHost.StartAsync(dir.Path, h =>
        {
            h.UseTransport(_ => new EmbeddedTransport(log, ownsLog: false));
            h.Options.ShutdownTimeout = TimeSpan.FromSeconds(5); // a failed dispatcher never drains: do not wait long for it
            FailureHost.Wiring(4, (Group, options, Handle))(h);
        });

        var accounts = Enumerable.Range(0, 36).Select(i => $"acct-{i}").Concat(Enumerable.Range(0, 4).Select(i => $"bad-{i}")).ToArray();
        var published = new List<Charge>();
        var seqs = new Dictionary<string, int>();
        async Task PublishAsync(IHost host, int count)
        {
            var publisher = host.Services.GetRequiredService<IEventPublisher>();
            var pending = new List<Task>();
            for (var i = 0; i < count; i++)
            {
                var account = accounts[(published.Count * 7 + i) % accounts.Length];
                var charge = new Charge(account, seqs[account] = seqs.GetValueOrDefault(account, -1) + 1);
                published.Add(charge);
                pending.Add(publisher.PublishAsync(charge).AsTask());
            }
            await Task.WhenAll(pending);
        }

        var members = new List<IHost>();
        var runners = new List<SubscriptionRunner>();
        string Errors() => string.Join("; ", runners.Select((r, i) => $"member {i}: {r.LastError?.ToString() ?? "none"}"));
        try
        {
            var a = await StartMemberAsync();
            members.Add(a);
            runners.Add(Runner(a));
            await PublishAsync(a, 1500);
            var b = await StartMemberAsync(); // a revoke on A, records in flight and prefetched
            members.Add(b);
            runners.Add(Runner(b));
            await PublishAsync(a, 1500);
            var c = await StartMemberAsync();
            members.Add(c);
            runners.Add(Runner(c));
            await PublishAsync(b, 1000);
            await b.StopAsync(); // B's partitions go back to A and C, some of its records never started
            await PublishAsync(a, 1000);

            var healthy = published.Where(p => !p.Account.StartsWith("bad-", StringComparison.Ordinal)).Select(p => (p.Account, p.Seq)).ToHashSet();
            var failing = published.Count - healthy.Count;
            var queue = a.Services.GetRequiredService<Herald.DeadLetters.DeadLetterQueue>();
            await Eventually.WaitAsync(async () =>
            {
                if (runners.Any(r => r.LastError is not null)) throw new InvalidOperationException($"a subscription failed: {Errors()}");
                var handled = calls.All.Where(x => x.Succeeded).Select(x => (x.Account, x.Seq)).ToHashSet();
                if (!healthy.IsSubsetOf(handled)) return false;
                var letters = await queue.ListAsync(FailureHost.Topic, Group);
                // A healthy event only fails when it was read from memory given back too early.
                if (letters.FirstOrDefault(l => l.KeyText?.StartsWith("acct-", StringComparison.Ordinal) == true) is { } damaged)
                    throw new InvalidOperationException($"a healthy event was dead-lettered ({damaged.KeyText}@{damaged.OriginalOffset}, {damaged.Reason}): its record was damaged");
                return letters.Select(l => (l.KeyText, l.OriginalOffset)).Distinct().Count() >= failing;
            }, TimeSpan.FromSeconds(90), () => $"every event handled or dead-lettered ({calls.All.Count} calls; {Errors()})");

            foreach (var m in members) await m.StopAsync();
            Assert.All(runners, r => Assert.Null(r.LastError));
        }
        finally
        {
            foreach (var m in members) await m.DisposeHostAsync();
        }
    }
}
