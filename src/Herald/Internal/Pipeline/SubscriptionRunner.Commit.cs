using System.Diagnostics;
using Herald.Transport;

namespace Herald.Internal.Pipeline;

internal sealed partial class SubscriptionRunner
{
    private readonly record struct PendingCommit(Lane Lane, bool Retry, long Offset);

    /// <summary>What can be committed now: per partition, the lowest unfinished offset. Dispatcher only.</summary>
    private static List<PendingCommit> Collect(IEnumerable<Lane> lanes)
    {
        var list = new List<PendingCommit>();
        foreach (var lane in lanes)
        {
            var main = lane.Main.Committable;
            if (main >= 0 && main != lane.CommittedMain) list.Add(new PendingCommit(lane, false, main));
            var retry = lane.Retry.Committable;
            if (retry >= 0 && retry != lane.CommittedRetry) list.Add(new PendingCommit(lane, true, retry));
        }
        return list;
    }

    private void StartCommit()
    {
        _lastCommitTicks = Stopwatch.GetTimestamp();
        var pending = Collect(DistinctLanes());
        if (pending.Count == 0) return;
        _commitInFlight = true;
        _ = RunCommitAsync(pending); // the store does its file work on a thread of its own
    }

    private async Task RunCommitAsync(List<PendingCommit> pending)
    {
        try
        {
            await CommitPendingAsync(pending).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            LastError = e;
            LogMessages.CommitFailed(_log, e, _sub.Group);
        }
        finally
        {
            _signals.Writer.TryWrite(new Signal(SignalKind.CommitDone));
        }
    }

    private async Task CommitPendingAsync(List<PendingCommit> pending)
    {
        var offsets = new List<KeyValuePair<TopicPartition, long>>(pending.Count);
        foreach (var p in pending) offsets.Add(new(p.Retry ? p.Lane.RetryPartition : p.Lane.MainPartition, p.Offset));
        await _consumer.CommitAsync(offsets, CancellationToken.None).ConfigureAwait(false);
        foreach (var p in pending)
        {
            if (p.Retry) Volatile.Write(ref p.Lane.CommittedRetry, p.Offset);
            else Volatile.Write(ref p.Lane.CommittedMain, p.Offset);
        }
    }

    /// <summary>The final commit at shutdown, on the dispatcher.</summary>
    private async Task CommitFinalAsync()
    {
        var pending = Collect(DistinctLanes());
        if (pending.Count == 0) return;
        try
        {
            await CommitPendingAsync(pending).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            LastError = e;
            LogMessages.CommitFailed(_log, e, _sub.Group);
        }
    }

    /// <summary>Commits revoked lanes, then lets the transport hand their partitions over. A failed
    /// commit only means the next owner repeats some records (at-least-once).</summary>
    private async Task CommitLanesAsync(List<Lane> lanes, TaskCompletionSource done)
    {
        var pending = Collect(lanes);
        try
        {
            if (pending.Count > 0) await CommitPendingAsync(pending).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            LastError = e;
            LogMessages.CommitFailed(_log, e, _sub.Group);
        }
        finally
        {
            done.TrySetResult();
        }
    }
}
