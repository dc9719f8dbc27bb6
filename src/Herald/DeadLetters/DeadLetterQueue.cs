using Herald.Internal;
using Herald.Transport;

namespace Herald.DeadLetters;

/// <summary>The dead letters of each (topic, group): list them, group them by failure, replay
/// them or discard them — one record, one key or one failure group at a time. Replay and discard
/// are recorded in the dead-letter topic itself, so they survive restarts; a parked key resumes
/// once none of its dead letters is left.</summary>
public sealed class DeadLetterQueue
{
    private readonly HeraldRuntime _rt;

    internal DeadLetterQueue(HeraldRuntime runtime) => _rt = runtime;

    /// <summary>Every (topic, group) of this instance's subscriptions: each has a dead-letter topic.</summary>
    public IReadOnlyList<(string Topic, string Group)> Subscriptions
    {
        get
        {
            var list = new List<(string, string)>();
            foreach (var s in _rt.Subscriptions)
                foreach (var t in s.Topics) list.Add((t, s.Group));
            return list;
        }
    }

    /// <summary>The unresolved dead letters of a topic and group, by partition and in order.</summary>
    public async Task<IReadOnlyList<DeadLetter>> ListAsync(string topic, string group, CancellationToken cancellationToken = default)
    {
        var all = new List<DeadLetter>();
        var partitions = Partitions(topic, group);
        for (var p = 0; p < partitions; p++)
            all.AddRange(await DeadLetterLog.ReadUnresolvedAsync(_rt.Transport, topic, group, p, cancellationToken).ConfigureAwait(false));
        return all;
    }

    /// <summary>The unresolved dead letters grouped by failure (exception type and first
    /// application frame), largest group first.</summary>
    public async Task<IReadOnlyList<DeadLetterFailureGroup>> GroupByFailureAsync(string topic, string group, CancellationToken cancellationToken = default)
    {
        var letters = await ListAsync(topic, group, cancellationToken).ConfigureAwait(false);
        var groups = new Dictionary<string, List<DeadLetter>>(StringComparer.Ordinal);
        foreach (var d in letters)
        {
            if (!groups.TryGetValue(d.FailureGroup, out var list)) groups[d.FailureGroup] = list = [];
            list.Add(d);
        }
        var result = new List<DeadLetterFailureGroup>(groups.Count);
        foreach (var (name, list) in groups)
        {
            var keys = new HashSet<string>(StringComparer.Ordinal);
            DateTimeOffset? last = null;
            string? sample = null;
            foreach (var d in list)
            {
                keys.Add(d.KeyText ?? $"(no key @{d.Id})");
                if (d.LastFailure > last || last is null) last = d.LastFailure ?? last;
                sample ??= d.ExceptionMessage;
            }
            result.Add(new DeadLetterFailureGroup(name, list[0].ExceptionType, list[0].FailureFrame, list.Count, keys.Count, sample, last));
        }
        result.Sort((a, b) => b.Count.CompareTo(a.Count));
        return result;
    }

    /// <summary>Replays the selected dead letters in order: back to their group through its retry
    /// topic (the default), or published again to the original topic for every group. Returns how
    /// many were replayed.</summary>
    public Task<int> ReplayAsync(string topic, string group, DeadLetterSelection selection, ReplayTarget target = ReplayTarget.OriginalGroup, CancellationToken cancellationToken = default) =>
        ResolveAsync(topic, group, selection, target, cancellationToken);

    /// <summary>Discards the selected dead letters; returns how many.</summary>
    public Task<int> DiscardAsync(string topic, string group, DeadLetterSelection selection, CancellationToken cancellationToken = default) =>
        ResolveAsync(topic, group, selection, null, cancellationToken);

    private async Task<int> ResolveAsync(string topic, string group, DeadLetterSelection selection, ReplayTarget? replay, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(selection);
        var partitions = Partitions(topic, group);
        var routing = _rt.Routing.Get(topic, group);
        var dlq = TopicNames.DeadLetter(topic, group);
        var retry = TopicNames.Retry(topic, group);
        var resolution = replay switch
        {
            ReplayTarget.OriginalGroup => "replayed-to-group",
            ReplayTarget.OriginalTopic => "replayed-to-topic",
            _ => "discarded",
        };
        var count = 0;
        // The gate keeps the subscription from parking a key's next event while it is unparked here.
        await routing.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            for (var p = 0; p < partitions; p++)
            {
                // Replayed events run past the parks of the dead letters that exist now, but not past
                // a failure that happens after the replay (which parks the key again).
                var mark = _rt.Transport.GetOffsets(dlq, p).End;
                var letters = await DeadLetterLog.ReadUnresolvedAsync(_rt.Transport, topic, group, p, cancellationToken).ConfigureAwait(false);
                foreach (var d in letters)
                {
                    if (!selection.Matches(d)) continue;
                    // Write the replay before the resolution: a crash between them repeats the
                    // replay rather than losing the event.
                    if (replay == ReplayTarget.OriginalGroup)
                    {
                        var headers = Headers.WithoutHerald(d.Headers, 7);
                        headers.Add(Headers.Of(HeaderNames.OriginalTopic, topic));
                        headers.Add(Headers.Of(HeaderNames.OriginalPartition, d.OriginalPartition));
                        headers.Add(Headers.Of(HeaderNames.OriginalOffset, d.OriginalOffset));
                        headers.Add(Headers.Of(HeaderNames.Group, group));
                        headers.Add(Headers.Of(HeaderNames.Round, 0));
                        headers.Add(Headers.Of(HeaderNames.Attempts, 0));
                        headers.Add(Headers.Of(HeaderNames.Replay, mark));
                        if (d.Key is { } k) routing.AddPending(p, k, d.OriginalOffset);
                        try
                        {
                            var copy = await _rt.Transport.ProduceAsync(retry, p, new OutgoingRecord(d.Key, d.Value, headers), cancellationToken).ConfigureAwait(false);
                            if (d.Key is { } copied) routing.SetLatestCopy(p, copied, d.OriginalOffset, copy);
                        }
                        catch when (d.Key is not null)
                        {
                            routing.RemovePending(p, d.Key.Value, d.OriginalOffset); // not written: nothing waits in the retry topic
                            throw;
                        }
                    }
                    else if (replay == ReplayTarget.OriginalTopic)
                    {
                        await _rt.Transport.ProduceAsync(topic, d.OriginalPartition, new OutgoingRecord(d.Key, d.Value, Headers.WithoutHerald(d.Headers, 0)), cancellationToken).ConfigureAwait(false);
                    }
                    await _rt.Transport.ProduceAsync(dlq, p, DeadLetterLog.Resolution(d.Key, d.Id.Offset, resolution), cancellationToken).ConfigureAwait(false);
                    if (d.Key is { } key) routing.RemoveParked(p, key, 1);
                    count++;
                }
            }
        }
        finally
        {
            routing.Gate.Release();
        }
        return count;
    }

    private int Partitions(string topic, string group)
    {
        try
        {
            return _rt.Transport.GetPartitionCount(TopicNames.DeadLetter(topic, group));
        }
        catch (UnknownTopicException)
        {
            throw new ArgumentException($"no dead-letter topic for topic '{topic}' and group '{group}': is '{group}' a subscription of '{topic}'?", nameof(group));
        }
    }
}
