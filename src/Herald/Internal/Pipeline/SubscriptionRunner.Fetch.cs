using Herald.Transport;

namespace Herald.Internal.Pipeline;

internal sealed partial class SubscriptionRunner
{
    // At most 512 records per fetch keeps a batch list (~88 bytes a record) off the large object heap.
    private const int FetchRecords = 512;
    private readonly System.Collections.Concurrent.ConcurrentQueue<List<TransportRecord>> _batchLists = new();
    private readonly HashSet<TopicPartition> _paused = [];
    private readonly HashSet<TopicPartition> _wantPaused = [];

    /// <summary>Fetches while the budget of main or retry records has room; pauses the kind whose
    /// budget is full so the other goes on (waiting retries never stall fresh events).</summary>
    private async Task FetchLoopAsync()
    {
        var stop = _stopFetching.Token;
        var failures = 0;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                var wake = Volatile.Read(ref _wake);
                var mainRoom = _mainBudget.HasRoom;
                var retryRoom = _retryBudget.HasRoom;
                var blockedLanes = ApplyPauses(pauseMain: !mainRoom, pauseRetry: !retryRoom);
                // A fetch may return records of either kind that is not paused, so it asks for no
                // more than the smaller room of those kinds: neither budget is ever overrun by more
                // than the one record a fetch always returns.
                int maxRecords;
                long maxBytes;
                if (mainRoom && retryRoom)
                {
                    maxRecords = Math.Min(_mainBudget.RecordRoom, _retryBudget.RecordRoom);
                    maxBytes = Math.Min(_mainBudget.ByteRoom, _retryBudget.ByteRoom);
                }
                else if (mainRoom || retryRoom)
                {
                    var budget = mainRoom ? _mainBudget : _retryBudget;
                    maxRecords = budget.RecordRoom;
                    maxBytes = budget.ByteRoom;
                }
                else
                {
                    maxRecords = 0;
                    maxBytes = 0;
                }
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(stop, wake.Token);
                // A partition paused for too many blocked keys resumes when replays or retries
                // clear them; look again every second.
                if (blockedLanes) linked.CancelAfter(TimeSpan.FromSeconds(1));
                // Batch lists are reused (pipeline benchmark: they were a tenth of all allocation).
                var batch = _batchLists.TryDequeue(out var reused) ? reused : new List<TransportRecord>(64);
                try
                {
                    if (maxRecords == 0) await Task.Delay(Timeout.Infinite, linked.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing); // woken: no exception
                    else await _consumer.FetchAsync(batch, Math.Min(maxRecords, FetchRecords), Math.Max(maxBytes, 1), linked.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!stop.IsCancellationRequested)
                {
                    _batchLists.Enqueue(batch); // an interrupted fetch adds nothing
                    continue; // budget came back, or time to look at blocked keys again: recompute what to pause
                }
                if (batch.Count == 0)
                {
                    _batchLists.Enqueue(batch);
                    continue;
                }
                int mainRecords = 0, retryRecords = 0;
                long mainBytes = 0, retryBytes = 0;
                string? lastTopic = null;
                var lastIsRetry = false;
                foreach (var r in batch)
                {
                    // Records of a fetch mostly share a topic: look it up when it changes.
                    if (!ReferenceEquals(r.Topic, lastTopic)) (lastTopic, lastIsRetry) = (r.Topic, _retryTopics.Contains(r.Topic));
                    if (lastIsRetry) { retryRecords++; retryBytes += r.Size; }
                    else { mainRecords++; mainBytes += r.Size; }
                }
                _mainBudget.Take(mainRecords, mainBytes);
                _retryBudget.Take(retryRecords, retryBytes);
                _signals.Writer.TryWrite(new Signal(SignalKind.Batch, batch));
                failures = 0;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // Transport faults (a broker away, a corrupt partition) are retried with backoff and
                // logged every time; the subscription never stops silently.
                LastError = e;
                if (_firstAssignment.TrySetException(e)) return; // never got going: the host's start reports it
                failures++;
                var delay = TimeSpan.FromMilliseconds(Math.Min(30_000, 100 * Math.Pow(2, Math.Min(failures, 10))));
                LogMessages.FetchFailed(_log, e, _sub.Group, delay);
                try
                {
                    await Task.Delay(delay, _rt.Time, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Pauses main partitions while the main budget is full, retry partitions while the
    /// retry budget is full, and a lane's main partition while it has MaxBlockedKeys keys waiting
    /// in the retry topic or parked (their state is held in memory); resumes the rest. True when a
    /// lane is paused for blocked keys.</summary>
    private bool ApplyPauses(bool pauseMain, bool pauseRetry)
    {
        _wantPaused.Clear();
        if (pauseMain || pauseRetry)
            foreach (var tp in _consumer.Assignment)
                if (_retryTopics.Contains(tp.Topic) ? pauseRetry : pauseMain) _wantPaused.Add(tp);
        var blocked = false;
        var maxTracked = 4L * _options.PrefetchRecords;
        foreach (var lane in _laneSnapshot)
        {
            // Too many blocked keys, or too many finished records held uncommittable behind one
            // that is not (a long retry wait, a stalled record): pause that partition.
            if (lane.RoutingState.Blocked >= _options.MaxBlockedKeys || lane.Main.Count >= maxTracked)
            {
                _wantPaused.Add(lane.MainPartition);
                blocked = true;
            }
            if (lane.Retry.Count >= maxTracked)
            {
                _wantPaused.Add(lane.RetryPartition);
                blocked = true;
            }
        }
        if (_wantPaused.SetEquals(_paused)) return blocked;
        var resume = new List<TopicPartition>();
        foreach (var tp in _paused)
            if (!_wantPaused.Contains(tp)) resume.Add(tp);
        var pause = new List<TopicPartition>();
        foreach (var tp in _wantPaused)
            if (!_paused.Contains(tp)) pause.Add(tp);
        if (resume.Count > 0) _consumer.Resume(resume);
        if (pause.Count > 0) _consumer.Pause(pause);
        _paused.Clear();
        _paused.UnionWith(_wantPaused);
        return blocked;
    }

    /// <summary>Called by the dispatcher when a full budget has room again: interrupts a fetch that
    /// waits on the other kind of partitions only.</summary>
    private void WakeFetcher()
    {
        // Not disposed here: the fetch loop may be reading its token right now. A source with no
        // timer and no wait handle holds nothing that needs disposing.
        var old = Interlocked.Exchange(ref _wake, new CancellationTokenSource());
        old.Cancel();
    }

    /// <summary>Runs inside a fetch: loads the routing state of the new partitions (keys waiting in
    /// the retry topic, keys parked in the dead-letter topic) before any of their records arrive.</summary>
    private async ValueTask OnAssignedAsync(IReadOnlyList<TopicPartition> partitions, CancellationToken fetchToken)
    {
        // Not the fetch's token (fetchToken): that one is also cancelled to wake the fetch loop, and
        // a half-done assignment must not be abandoned for that.
        var cancellationToken = _stopFetching.Token;
        var lanes = new List<Lane>();
        var seen = new HashSet<(string, int)>();
        foreach (var tp in partitions)
        {
            var topic = _retryTopics.Contains(tp.Topic) ? MainTopicOf(tp.Topic) : tp.Topic;
            if (!seen.Add((topic, tp.Partition))) continue;
            var routing = _rt.Routing.Get(topic, _sub.Group);
            var state = new KeyRouting.Partition();
            // Under the gate: a replay or discard between the fold and the load would be lost.
            await routing.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
            var retry = new TopicPartition(TopicNames.Retry(topic, _sub.Group), tp.Partition);
            var from = _consumer.GetCommitted(retry) ?? 0;
            await DeadLetterLog.FoldPendingAsync(_rt.Transport, retry.Topic, tp.Partition, from, state, cancellationToken).ConfigureAwait(false);
            if (_options.DeadLetterMode == Subscriptions.DeadLetterMode.Park)
                DeadLetterLog.FoldParked(await DeadLetterLog.ReadUnresolvedAsync(_rt.Transport, topic, _sub.Group, tp.Partition, cancellationToken).ConfigureAwait(false), state);
            routing.Load(tp.Partition, state);
            }
            finally
            {
                routing.Gate.Release();
            }
            var lane = new Lane(topic, _sub.Group, tp.Partition, routing, state);
            // Lag is reported from the start: from the committed offset, or from where a new group begins.
            lane.CommittedMain = _consumer.GetCommitted(lane.MainPartition) ?? _rt.Transport.GetOffsets(topic, tp.Partition).Start;
            lane.CommittedRetry = _consumer.GetCommitted(lane.RetryPartition) ?? -1;
            lanes.Add(lane);
        }
        // New partitions start unpaused; the next fetch round pauses what needs it.
        foreach (var tp in partitions) _paused.Remove(tp);
        _firstAssignment.TrySetResult();
        _signals.Writer.TryWrite(new Signal(SignalKind.Assign, lanes));
    }

    /// <summary>Runs inside a fetch: the dispatcher drops the partitions' unstarted records, waits
    /// for their running handlers, and commits, before the partitions go to another member.</summary>
    private async ValueTask OnRevokingAsync(IReadOnlyList<TopicPartition> partitions, CancellationToken fetchToken)
    {
        var cancellationToken = _stopFetching.Token; // not fetchToken: see OnAssignedAsync
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _signals.Writer.TryWrite(new Signal(SignalKind.Revoke, partitions, Done: done));
        await done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private string MainTopicOf(string retryTopic)
    {
        foreach (var t in _sub.Topics)
            if (TopicNames.Retry(t, _sub.Group) == retryTopic) return t;
        throw new InvalidOperationException($"'{retryTopic}' is not a retry topic of subscription '{_sub.Group}'");
    }
}
