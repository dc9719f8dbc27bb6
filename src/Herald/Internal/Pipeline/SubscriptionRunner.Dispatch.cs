using System.Diagnostics;
using Herald.Subscriptions;
using Herald.Transport;

namespace Herald.Internal.Pipeline;

internal sealed partial class SubscriptionRunner
{
    private readonly Stack<Queue<Work>> _queuePool = new();
    private bool _forceStop;
    private readonly Stack<Work> _workPool = new();

    /// <summary>Returns a work for reuse; the pool holds at most what prefetch allows in memory.</summary>
    private void Recycle(Work work)
    {
        work.Clear();
        if (_workPool.Count < _options.PrefetchRecords) _workPool.Push(work);
    }

    private async Task DispatchLoopAsync()
    {
        var reader = _signals.Reader;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                while (reader.TryRead(out var signal)) Handle(signal);
                if (_stopping && _abort.IsCancellationRequested && !_droppedAfterAbort)
                {
                    _droppedAfterAbort = true;
                    foreach (var lane in DistinctLanes()) DropUnstarted(lane);
                }
                StartReady();
                FlushReleasedBudget();
                if (_stopping)
                {
                    if ((_inFlight == 0 && _ready.Count == 0 && _due.Count == 0 && AllLanesIdle() && !_commitInFlight) || _forceStop)
                    {
                        await CommitFinalAsync().ConfigureAwait(false);
                        _stopped?.TrySetResult();
                        return;
                    }
                }
                if (!_commitInFlight && Stopwatch.GetElapsedTime(_lastCommitTicks) >= _options.CommitInterval) StartCommit();
            }
        }
        catch (Exception e)
        {
            LogMessages.DispatcherFailed(_log, e, _sub.Group);
            LastError = e;
            _stopped?.TrySetException(e);
            throw;
        }
    }

    private void Handle(Signal signal)
    {
        switch (signal.Kind)
        {
            case SignalKind.Batch:
                var batch = (List<TransportRecord>)signal.Payload!;
                Enqueue(batch);
                batch.Clear();
                if (_batchLists.Count < 1024) _batchLists.Enqueue(batch);
                break;
            case SignalKind.Completed:
                Finish((Work)signal.Payload!, signal.Flag);
                break;
            case SignalKind.Wake:
                if (((Work)signal.Payload!).Generation == signal.Generation) OnDue((Work)signal.Payload!);
                break;
            case SignalKind.Assign:
                foreach (var lane in (List<Lane>)signal.Payload!)
                {
                    _lanes[lane.MainPartition] = lane;
                    _lanes[lane.RetryPartition] = lane;
                }
                SnapshotLanes();
                break;
            case SignalKind.Revoke:
                BeginRevoke((IReadOnlyList<TopicPartition>)signal.Payload!, signal.Done!);
                break;
            case SignalKind.RevokeExpired:
                ExpireRevoke(signal.Done!);
                break;
            case SignalKind.CommitDone:
                _commitInFlight = false;
                break;
            case SignalKind.Tick:
                break;
            case SignalKind.ForceStop:
                _forceStop = true;
                break;
            case SignalKind.Stop:
                // Drain: records already fetched still run (so that nothing handled lies above a
                // dropped record and comes again after a restart); only retries waiting for their
                // due time are let go. Past the drain timeout the rest is dropped.
                _stopping = true;
                _stopped = signal.Done;
                foreach (var lane in DistinctLanes()) DropWaitingRetries(lane);
                break;
        }
    }

    private void Enqueue(List<TransportRecord> batch)
    {
        BatchScope? scope = _options.HandlerScope == HandlerScope.PerBatch ? new BatchScope(_rt.Services) : null;
        Lane? last = null;
        foreach (var record in batch)
        {
            // Records of a batch mostly share a partition: look the lane up only when it changes.
            var lane = last is not null && last.Partition == record.Partition && (ReferenceEquals(last.Topic, record.Topic) || ReferenceEquals(last.RetryTopic, record.Topic))
                ? last
                : _lanes.GetValueOrDefault(new TopicPartition(record.Topic, record.Partition));
            last = lane;
            if (lane is null || lane.Revoking || _stopping)
            {
                ReleaseBudget(record.Topic, 1, record.Size); // fetched just before a revoke: the next owner reads it again
                record.Lease?.Release();
                continue;
            }
            var isRetry = record.Topic == lane.RetryTopic;
            var size = record.Size;
            var seq = (isRetry ? lane.Retry : lane.Main).Add(record.Offset, size);
            scope?.AddRef();
            var work = _workPool.TryPop(out var pooled) ? pooled : new Work();
            work.Init(record, lane, isRetry, seq, size, scope);
            if (isRetry) ReadRetryHeaders(work);
            if (record.Key is not { } key)
            {
                _ready.Enqueue(work);
                continue;
            }
            // One lookup for both cases (pipeline benchmark: a hash of the key per lookup).
            ref var waiting = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(lane.Keys, key, out var keyBusy);
            if (keyBusy)
            {
                if (!isRetry && lane.WaitingHeads.Count > 0 && lane.WaitingHeads.Contains(key))
                {
                    work.Detached = true;
                    _ready.Enqueue(work);
                }
                else waiting!.Enqueue(work);
                continue;
            }
            waiting = _queuePool.TryPop(out var q) ? q : new Queue<Work>();
            _ready.Enqueue(work);
        }
        scope?.Release();
    }

    private static void ReadRetryHeaders(Work work)
    {
        var h = work.Record.Headers;
        work.OriginalOffset = Headers.Long(h, HeaderNames.OriginalOffset) ?? work.Record.Offset;
        work.Round = (int)(Headers.Long(h, HeaderNames.Round) ?? 0);
        work.PriorAttempts = (int)(Headers.Long(h, HeaderNames.Attempts) ?? 0);
        work.DueMs = Headers.Long(h, HeaderNames.DueMs) ?? 0;
        work.ReplayMark = Headers.Long(h, HeaderNames.Replay) ?? -1;
        work.FirstFailureMs = Headers.Long(h, HeaderNames.FirstFailureMs) ?? 0;
        work.IsMarker = Headers.Find(h, HeaderNames.RetryOp) is not null;
        if (work.IsMarker) work.DueMs = 0;
    }

    private readonly Queue<Work> _due = new();

    private void StartReady()
    {
        while (_inFlight < _options.MaxInFlight && !_droppedAfterAbort && (_due.TryDequeue(out var work) || _ready.TryDequeue(out work)))
            Start(work);
    }

    private void Start(Work work)
    {
        var lane = work.Lane;
        lane.Outstanding++;
        if (work.DueMs > 0)
        {
            var wait = work.DueMs - _rt.Time.GetUtcNow().ToUnixTimeMilliseconds();
            if (wait > 0)
            {
                // A delayed retry not yet due: it holds its key (later events of the key wait behind
                // it) but not a handler slot.
                work.DueTimer = _rt.Time.CreateTimer(static state =>
                {
                    var (runner, w, generation) = ((SubscriptionRunner, Work, int))state!;
                    runner._signals.Writer.TryWrite(new Signal(SignalKind.Wake, w, Generation: generation));
                }, (this, work, work.Generation), TimeSpan.FromMilliseconds(wait), Timeout.InfiniteTimeSpan);
                _waitingForDue.Add(work);
                if (!work.Detached && work.Key is { } waitingKey && lane.Keys.TryGetValue(waitingKey, out var behind))
                {
                    // Main-topic events queued behind a head that waits can only be diverted behind it
                    // into the retry topic: let them go now rather than hold the main partition for
                    // the whole delay. (Retry-topic events stay queued: requeueing them would loop.)
                    lane.WaitingHeads.Add(waitingKey);
                    var count = behind.Count;
                    for (var i = 0; i < count; i++)
                    {
                        var next = behind.Dequeue();
                        if (next.IsRetry) behind.Enqueue(next);
                        else
                        {
                            next.Detached = true;
                            _ready.Enqueue(next);
                        }
                    }
                }
                return;
            }
        }
        _inFlight++;
        var pending = ProcessAsync(work);
        if (pending.IsCompletedSuccessfully) Finish(work, pending.Result);
        else _ = CompleteLaterAsync(work, pending);
    }

    private async Task CompleteLaterAsync(Work work, ValueTask<bool> pending)
    {
        var done = false;
        try
        {
            done = await pending.ConfigureAwait(false);
        }
        finally
        {
            _signals.Writer.TryWrite(new Signal(SignalKind.Completed, work, done));
        }
    }

    private void OnDue(Work work)
    {
        if (!_waitingForDue.Remove(work)) return; // abandoned while its timer fired
        work.DueTimer?.Dispose();
        work.DueTimer = null;
        work.Lane.Outstanding--;
        if (work.Lane.Revoking || _stopping)
        {
            if (work.Key is { } abandoned) work.Lane.WaitingHeads.Remove(abandoned);
            AbandonKey(work);
            CheckRevokes();
            return;
        }
        if (work.Key is { } key) work.Lane.WaitingHeads.Remove(key);
        _due.Enqueue(work); // started ahead of other ready records, within MaxInFlight; Start checks the clock again
    }

    /// <summary>A work is over: done (committable) or abandoned (revoke or shutdown). Its key's next
    /// record, if any, becomes ready.</summary>
    private void Finish(Work work, bool done)
    {
        _inFlight--;
        var lane = work.Lane;
        lane.Outstanding--;
        if (done) (work.IsRetry ? lane.Retry : lane.Main).Finish(work.Seq);
        // A partition that just reached MaxBlockedKeys must pause now, not after the fetch that is
        // already waiting returns with more of its records.
        var overLimit = lane.RoutingState.Blocked >= _options.MaxBlockedKeys;
        if (overLimit && !lane.OverBlockedLimit) WakeFetcher();
        lane.OverBlockedLimit = overLimit;
        // Prefetch room comes back when a record is over, not when it becomes committable: a retry
        // waiting an hour must not hold the room other keys' records need (the tracker keeps the
        // offsets, and ApplyPauses bounds it).
        ReleaseBudget(work.IsRetry, 1, work.Size);
        work.Batch?.Release();
        if (work.Detached)
        {
            if (done || lane.Revoking || _stopping) Recycle(work);
            if (lane.Revoking) CheckRevokes();
            return;
        }
        if (!done && !lane.Revoking && !_stopping)
        {
            // The record could not be finished (its retry or dead-letter write failed): its key
            // stays blocked so that nothing of the key overtakes it. A restart repeats it.
            return;
        }
        // While draining at stop the key goes on; once a record of it was abandoned (or the drain
        // timed out) the rest of the key is dropped, since it may not overtake that record.
        var dropRest = lane.Revoking || (_stopping && (!done || _droppedAfterAbort));
        if (work.Key is { } key && lane.Keys.Remove(key, out var waiting))
        {
            if (!dropRest && waiting.TryDequeue(out var next))
            {
                // The entry's key bytes may live in this record's pooled read, which goes back to
                // its pool below: key the entry by the record that now heads the key instead.
                lane.Keys[next.Key!.Value] = waiting;
                _ready.Enqueue(next);
            }
            else
            {
                while (waiting.TryDequeue(out var dropped)) Drop(dropped);
                _queuePool.Push(waiting);
            }
        }
        Recycle(work);
        if (lane.Revoking) CheckRevokes();
    }

    private void Drop(Work work)
    {
        ReleaseBudget(work.IsRetry, 1, work.Size);
        work.Batch?.Release();
        Recycle(work);
    }

    private void AbandonKey(Work work)
    {
        if (!work.Detached && work.Key is { } key && work.Lane.Keys.Remove(key, out var waiting))
        {
            while (waiting.TryDequeue(out var dropped)) Drop(dropped);
            _queuePool.Push(waiting);
        }
        Drop(work);
    }

    private void ReleaseBudget(string topic, int records, long bytes) => ReleaseBudget(_retryTopics.Contains(topic), records, bytes);

    // Released room is gathered and handed back once per dispatcher round, not once per record:
    // the budget is shared with the fetch loop through interlocked counters (pipeline benchmark).
    private int _releasedMainRecords, _releasedRetryRecords;
    private long _releasedMainBytes, _releasedRetryBytes;

    private void ReleaseBudget(bool retry, int records, long bytes)
    {
        if (retry)
        {
            _releasedRetryRecords += records;
            _releasedRetryBytes += bytes;
        }
        else
        {
            _releasedMainRecords += records;
            _releasedMainBytes += bytes;
        }
    }

    private void FlushReleasedBudget()
    {
        var wake = false;
        if (_releasedMainRecords != 0 || _releasedMainBytes != 0) wake |= _mainBudget.Release(_releasedMainRecords, _releasedMainBytes);
        if (_releasedRetryRecords != 0 || _releasedRetryBytes != 0) wake |= _retryBudget.Release(_releasedRetryRecords, _releasedRetryBytes);
        _releasedMainRecords = _releasedRetryRecords = 0;
        _releasedMainBytes = _releasedRetryBytes = 0;
        if (wake) WakeFetcher();
    }

    /// <summary>Drops the lane's records that have not started: they stay uncommitted, so whoever
    /// owns the partition next reads them again.</summary>
    private void DropUnstarted(Lane lane)
    {
        for (var i = _due.Count; i > 0; i--)
        {
            var w = _due.Dequeue();
            if (w.Lane == lane) AbandonKey(w);
            else _due.Enqueue(w);
        }
        if (_ready.Count > 0)
        {
            var keep = _ready.Count;
            for (var i = 0; i < keep; i++)
            {
                var w = _ready.Dequeue();
                if (w.Lane == lane) AbandonKey(w);
                else _ready.Enqueue(w);
            }
        }
        foreach (var (key, waiting) in lane.Keys)
        {
            while (waiting.TryDequeue(out var dropped)) Drop(dropped);
        }
        // Works waiting for their due time are abandoned now; keys with a running handler are
        // cleaned up when it finishes.
        lane.WaitingHeads.Clear();
        foreach (var w in PendingTimers(lane))
        {
            w.DueTimer!.Dispose();
            w.DueTimer = null;
            lane.Outstanding--;
            AbandonKey(w);
        }
    }

    private bool _droppedAfterAbort;

    /// <summary>Lets go of the lane's retries waiting for their due time (at stop).</summary>
    private void DropWaitingRetries(Lane lane)
    {
        lane.WaitingHeads.Clear();
        foreach (var w in PendingTimers(lane))
        {
            w.DueTimer!.Dispose();
            w.DueTimer = null;
            lane.Outstanding--;
            AbandonKey(w);
        }
    }

    private readonly List<Work> _timerScratch = [];

    private List<Work> PendingTimers(Lane lane)
    {
        _timerScratch.Clear();
        // A work waiting for its due time is the head of its key: find it among the key queues' owners.
        foreach (var w in _waitingForDue)
            if (w.Lane == lane && w.DueTimer is not null) _timerScratch.Add(w);
        foreach (var w in _timerScratch) _waitingForDue.Remove(w);
        return _timerScratch;
    }

    private readonly HashSet<Work> _waitingForDue = [];

    private void BeginRevoke(IReadOnlyList<TopicPartition> partitions, TaskCompletionSource done)
    {
        var lanes = new List<Lane>();
        foreach (var tp in partitions)
            if (_lanes.TryGetValue(tp, out var lane) && !lanes.Contains(lane)) lanes.Add(lane);
        foreach (var lane in lanes)
        {
            lane.Revoking = true;
            DropUnstarted(lane);
        }
        var expiry = _rt.Time.CreateTimer(static state =>
        {
            var (runner, done) = ((SubscriptionRunner, TaskCompletionSource))state!;
            runner._signals.Writer.TryWrite(new Signal(SignalKind.RevokeExpired, Done: done));
        }, (this, done), _options.RevokeTimeout, Timeout.InfiniteTimeSpan);
        _revokes.Add((lanes, done, expiry));
        CheckRevokes();
    }

    private void CheckRevokes()
    {
        for (var i = _revokes.Count - 1; i >= 0; i--)
        {
            var (lanes, done, _) = _revokes[i];
            var idle = true;
            foreach (var lane in lanes) idle &= lane.Outstanding == 0;
            if (idle) HandOver(i);
        }
    }

    /// <summary>The revoke timeout passed with handlers of the partitions still running: they go
    /// now. What finished is committed; the running records are abandoned uncommitted (their
    /// results come to lanes no longer tracked) and the next owner handles them again.</summary>
    private void ExpireRevoke(TaskCompletionSource done)
    {
        var i = _revokes.FindIndex(r => r.Done == done);
        if (i < 0) return; // handed over in time
        var running = 0;
        foreach (var lane in _revokes[i].Lanes) running += lane.Outstanding;
        LogMessages.RevokeTimedOut(_log, _sub.Group, running, _options.RevokeTimeout);
        HandOver(i);
    }

    private void HandOver(int i)
    {
        var (lanes, done, expiry) = _revokes[i];
        _revokes.RemoveAt(i);
        expiry.Dispose();
        foreach (var lane in lanes)
        {
            _lanes.Remove(lane.MainPartition);
            _lanes.Remove(lane.RetryPartition);
            lane.Routing.Unload(lane.Partition);
        }
        SnapshotLanes();
        _ = CommitLanesAsync(lanes, done);
    }

    private bool AllLanesIdle()
    {
        foreach (var lane in DistinctLanes())
            if (lane.Outstanding > 0) return false;
        return true;
    }

    private IEnumerable<Lane> DistinctLanes()
    {
        foreach (var (tp, lane) in _lanes)
            if (tp == lane.MainPartition) yield return lane;
    }

    private void SnapshotLanes() => _laneSnapshot = [.. DistinctLanes()];
}
