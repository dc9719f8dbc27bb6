using Herald.Internal;
using Herald.Internal.Pipeline;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Herald.Hosting;

/// <summary>Creates the topics and runs every subscription for the life of the host; stopping
/// drains in-flight handlers (up to <see cref="HeraldOptions.ShutdownTimeout"/>) and commits.</summary>
internal sealed class HeraldHostedService(HeraldRuntime runtime) : IHostedService, IAsyncDisposable
{
    private readonly List<SubscriptionRunner> _runners = [];

    internal IReadOnlyList<SubscriptionRunner> Runners => _runners;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await runtime.EnsureTopicsAsync(cancellationToken).ConfigureAwait(false);
        // Herald's tables exist before the application's first transaction on the store's
        // database: created later, on a second connection, they would wait for the write lock
        // that transaction holds (SQLite).
        if (runtime.Outbox is { } outbox) await outbox.Store.InitializeAsync(cancellationToken).ConfigureAwait(false);
        foreach (var s in runtime.Subscriptions) _runners.Add(new SubscriptionRunner(runtime, s));
        foreach (var r in _runners) r.Start();
        // Started means subscribed: wait until every member has its partitions and their positions.
        foreach (var r in _runners) await r.Ready.WaitAsync(cancellationToken).ConfigureAwait(false);
        LogMessages.Started(runtime.LoggerFactory.CreateLogger("Herald"), runtime.Transport.Name, _runners.Count);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        var stops = new List<Task>(_runners.Count);
        foreach (var r in _runners) stops.Add(r.StopAsync(runtime.Options.ShutdownTimeout));
        await Task.WhenAll(stops).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var r in _runners) await r.DisposeAsync().ConfigureAwait(false);
        _runners.Clear();
    }
}
