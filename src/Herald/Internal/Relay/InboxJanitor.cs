using Herald.Inbox;
using Herald.Subscriptions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Herald.Internal.Relay;

/// <summary>Keeps the inbox bounded: every <see cref="InboxOptions.PurgeInterval"/>, removes entries
/// older than <see cref="InboxOptions.Retention"/> and the oldest beyond
/// <see cref="InboxOptions.MaxEntries"/>, a bounded number of rows per statement. Runs only when a
/// subscription here uses the inbox; several processes purging one database do no harm.</summary>
internal sealed class InboxJanitor(IInboxStore store, InboxOptions options, IReadOnlyList<SubscriptionDefinition> subscriptions, TimeProvider time, ILogger logger)
    : BackgroundService
{
    private const int RowsPerStatement = 10_000;

    /// <summary>Entries removed so far (for tests).</summary>
    internal long Purged;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var used = false;
        foreach (var s in subscriptions) used |= s.Options.Idempotency == Idempotency.Inbox;
        if (!used) return;
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            var delay = options.PurgeInterval;
            try
            {
                await PurgeAsync(stoppingToken).ConfigureAwait(false);
                failures = 0;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                failures++;
                delay = TimeSpan.FromMilliseconds(Math.Min(Math.Max(options.PurgeInterval.TotalMilliseconds, 1000), 1000 * Math.Pow(2, Math.Min(failures, 8))));
                LogMessages.InboxPurgeFailed(logger, e, delay);
            }
            try
            {
                await Task.Delay(delay, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    internal async Task PurgeAsync(CancellationToken cancellationToken)
    {
        var before = time.GetUtcNow().ToUnixTimeMilliseconds() - (long)options.Retention.TotalMilliseconds;
        long total = 0;
        while (true)
        {
            var removed = await store.PurgeAsync(before, options.MaxEntries, RowsPerStatement, cancellationToken).ConfigureAwait(false);
            total += removed;
            if (removed < RowsPerStatement) break;
        }
        if (total == 0) return;
        Interlocked.Add(ref Purged, total);
        LogMessages.InboxPurged(logger, total, options.Retention, options.MaxEntries);
    }
}
