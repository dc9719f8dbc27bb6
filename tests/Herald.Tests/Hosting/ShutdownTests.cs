using System.Collections.Concurrent;
using System.Diagnostics;
using Herald.Tests.Kit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Herald.Tests.Hosting;

public sealed record PaymentCaptured(string PaymentId, int Sequence);

public class ShutdownTests
{
    /// <summary>One partition, so events are handled in offset order: once a later marker is
    /// handled after a restart, a redelivered earlier event would have been handled already.</summary>
    private static Action<HeraldBuilder> Payments(string dir, TimeSpan shutdownTimeout, Func<PaymentCaptured, EventContext, CancellationToken, ValueTask> handler) => h =>
    {
        h.UseEmbedded(dir, Hosts.Fast);
        h.Options.ShutdownTimeout = shutdownTimeout;
        h.Topic("payments", partitions: 1);
        h.Event<PaymentCaptured>("payments", e => e.PaymentId);
        h.Subscribe("ledger", s => s.Handle(handler));
    };

    [Fact]
    public async Task Stopping_waits_for_an_in_flight_handler_that_finishes_in_time_and_commits_it()
    {
        using var dir = new TempDirectory("shutdown");
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var finished = false;
        var cancelled = false;
        var host = await TestHost.StartAsync(dir.Path, Payments(dir.Path, TimeSpan.FromSeconds(20), async (e, ctx, ct) =>
        {
            started.TrySetResult();
            await release.Task;
            cancelled = ct.IsCancellationRequested;
            Volatile.Write(ref finished, true);
        }));
        try
        {
            await host.Services.GetRequiredService<IEventPublisher>().PublishAsync(new PaymentCaptured("pay-1", 0));
            await started.Task.WaitAsync(TimeSpan.FromSeconds(10));
            var stopping = host.StopAsync();
            // Stopping must not return while the handler runs: give it a moment to do so wrongly.
            Assert.NotSame(stopping, await Task.WhenAny(stopping, Task.Delay(300)));
            release.SetResult();
            await stopping.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(Volatile.Read(ref finished));
            Assert.False(cancelled);
        }
        finally
        {
            release.TrySetResult();
            await host.DisposeHostAsync();
        }

        var handled = new ConcurrentQueue<int>();
        host = await TestHost.StartAsync(dir.Path, Payments(dir.Path, TimeSpan.FromSeconds(20), (e, ctx, ct) =>
        {
            handled.Enqueue(e.Sequence);
            return ValueTask.CompletedTask;
        }));
        try
        {
            await host.Services.GetRequiredService<IEventPublisher>().PublishAsync(new PaymentCaptured("pay-2", 1));
            await TestHost.WaitUntilAsync(() => handled.Contains(1), TimeSpan.FromSeconds(10), "the marker handled");
            await host.StopAsync();
        }
        finally
        {
            await host.DisposeHostAsync();
        }
        Assert.Equal([1], handled); // the drained event was committed: not redelivered
    }

    [Fact]
    public async Task A_handler_that_outlasts_the_shutdown_timeout_is_cancelled_and_its_event_redelivered_after_restart()
    {
        using var dir = new TempDirectory("shutdown");
        var timeout = TimeSpan.FromMilliseconds(300);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sawCancellation = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        string? firstId = null;
        var host = await TestHost.StartAsync(dir.Path, Payments(dir.Path, timeout, async (e, ctx, ct) =>
        {
            firstId = ctx.Envelope.Id;
            Assert.Equal(ct, ctx.CancellationToken);
            started.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
            }
            catch (OperationCanceledException)
            {
                sawCancellation.TrySetResult();
                throw;
            }
        }));
        var clock = new Stopwatch();
        try
        {
            await host.Services.GetRequiredService<IEventPublisher>().PublishAsync(new PaymentCaptured("pay-1", 0));
            await started.Task.WaitAsync(TimeSpan.FromSeconds(10));
            clock.Start();
            await host.StopAsync().WaitAsync(TimeSpan.FromSeconds(10));
            clock.Stop();
        }
        finally
        {
            await host.DisposeHostAsync();
        }
        Assert.True(sawCancellation.Task.IsCompleted, "the handler's cancellation token was not cancelled");
        Assert.True(clock.Elapsed >= timeout * 0.9, $"stopped after {clock.Elapsed.TotalMilliseconds:F0} ms, before the {timeout.TotalMilliseconds} ms timeout");

        var redelivered = new ConcurrentQueue<(int Sequence, string Id, int Attempt)>();
        host = await TestHost.StartAsync(dir.Path, Payments(dir.Path, timeout, (e, ctx, ct) =>
        {
            redelivered.Enqueue((e.Sequence, ctx.Envelope.Id, ctx.Attempt));
            return ValueTask.CompletedTask;
        }));
        try
        {
            await host.Services.GetRequiredService<IEventPublisher>().PublishAsync(new PaymentCaptured("pay-2", 1));
            await TestHost.WaitUntilAsync(() => redelivered.Any(r => r.Sequence == 1), TimeSpan.FromSeconds(10), "the marker handled");
            await host.StopAsync();
        }
        finally
        {
            await host.DisposeHostAsync();
        }
        var list = redelivered.ToList();
        Assert.Equal([0, 1], list.Select(r => r.Sequence));
        Assert.Equal(firstId, list[0].Id);
    }

    [Fact]
    public async Task A_handler_that_ignores_cancellation_holds_the_stop_no_longer_than_the_timeout_and_its_grace_and_finished_events_are_committed()
    {
        // Herald cancels at ShutdownTimeout and then gives handlers 5 s more; past that, stopping
        // goes on without them (the stuck event stays uncommitted and is redelivered). The host's
        // own limit is set well beyond, so that it is Herald that bounds the stop. The stuck key and
        // the other key are in different partitions: the other's offsets can be committed.
        using var dir = new TempDirectory("shutdown");
        var timeout = TimeSpan.FromMilliseconds(200);
        var grace = TimeSpan.FromSeconds(5);
        const string stuckKey = "stuck";
        var stuckPartition = Herald.Transport.Partitioner.ForKey("stuck"u8, 2);
        var quickKey = Enumerable.Range(0, 100).Select(i => $"quick-{i}").First(k => Herald.Transport.Partitioner.ForKey(System.Text.Encoding.UTF8.GetBytes(k), 2) != stuckPartition);
        var stuck = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stuckStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var quick = new ConcurrentQueue<int>();
        Action<HeraldBuilder> payments(Func<PaymentCaptured, EventContext, CancellationToken, ValueTask> handler) => h =>
        {
            h.UseEmbedded(dir.Path, Hosts.Fast);
            h.Options.ShutdownTimeout = timeout;
            h.Topic("payments", partitions: 2);
            h.Event<PaymentCaptured>("payments", e => e.PaymentId);
            h.Subscribe("ledger", s => s.Handle(handler));
        };
        var host = await TestHost.StartAsync(dir.Path, payments(async (e, ctx, ct) =>
        {
            if (e.PaymentId == stuckKey)
            {
                stuckStarted.TrySetResult();
                await stuck.Task; // deaf to ct
                return;
            }
            quick.Enqueue(e.Sequence);
        }), services => services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10)));
        var clock = new Stopwatch();
        Exception? stopError;
        try
        {
            var publisher = host.Services.GetRequiredService<IEventPublisher>();
            await publisher.PublishAsync(new PaymentCaptured(stuckKey, 0));
            await stuckStarted.Task.WaitAsync(TimeSpan.FromSeconds(10));
            for (var i = 1; i <= 5; i++) await publisher.PublishAsync(new PaymentCaptured(quickKey, i));
            await TestHost.WaitUntilAsync(() => quick.Count == 5, TimeSpan.FromSeconds(10), "the other key's 5 events handled");
            clock.Start();
            stopError = await Record.ExceptionAsync(() => host.StopAsync());
            clock.Stop();
        }
        finally
        {
            stuck.TrySetResult(); // let the dispatcher finish, or disposing the host would wait for it
            await host.DisposeHostAsync();
        }
        Assert.True(stopError is null, $"stopping threw {stopError}");
        Assert.True(clock.Elapsed < timeout + grace + TimeSpan.FromSeconds(2), $"stopping took {clock.Elapsed.TotalSeconds:F1} s with a {timeout.TotalSeconds} s ShutdownTimeout");

        var redelivered = new ConcurrentQueue<(string Payment, int Sequence)>();
        host = await TestHost.StartAsync(dir.Path, payments((e, ctx, ct) =>
        {
            redelivered.Enqueue((e.PaymentId, e.Sequence));
            return ValueTask.CompletedTask;
        }));
        try
        {
            // A marker behind each key, in its partition: once both are handled, anything redelivered has been too.
            var publisher = host.Services.GetRequiredService<IEventPublisher>();
            await publisher.PublishAsync(new PaymentCaptured(stuckKey, 100));
            await publisher.PublishAsync(new PaymentCaptured(quickKey, 100));
            await TestHost.WaitUntilAsync(() => redelivered.Count(r => r.Sequence == 100) == 2, TimeSpan.FromSeconds(10), "both markers handled");
            await host.StopAsync();
        }
        finally
        {
            await host.DisposeHostAsync();
        }
        Assert.Equal([(stuckKey, 0), (stuckKey, 100)], redelivered.Where(r => r.Payment == stuckKey));
        Assert.Equal([(quickKey, 100)], redelivered.Where(r => r.Payment == quickKey));
    }
}
