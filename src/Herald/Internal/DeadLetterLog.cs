using Herald.DeadLetters;
using Herald.Log;
using Herald.Transport;

namespace Herald.Internal;

/// <summary>Reads and writes the dead-letter and retry topics. A dead-letter topic holds entries
/// and resolution records (replayed or discarded); the unresolved entries are the dead letters.</summary>
internal static class DeadLetterLog
{
    public const string ResolveOp = "resolve";

    /// <summary>The unresolved dead letters of one partition, in offset order.</summary>
    public static async Task<List<DeadLetter>> ReadUnresolvedAsync(ITransport transport, string topic, string group, int partition, CancellationToken cancellationToken)
    {
        var dlq = TopicNames.DeadLetter(topic, group);
        var entries = new List<DeadLetter>();
        var resolved = new HashSet<long>();
        await foreach (var r in transport.ReadAsync(dlq, partition, 0, cancellationToken).ConfigureAwait(false))
        {
            if (Headers.String(r.Headers, HeaderNames.DeadLetterOp) == ResolveOp)
            {
                if (Headers.Long(r.Headers, HeaderNames.Resolves) is { } target) resolved.Add(target);
                continue;
            }
            entries.Add(Parse(r, topic, group));
        }
        entries.RemoveAll(e => resolved.Contains(e.Id.Offset));
        return entries;
    }

    /// <summary>The parked keys of a partition, from its unresolved dead letters.</summary>
    public static void FoldParked(List<DeadLetter> unresolved, KeyRouting.Partition into)
    {
        foreach (var d in unresolved)
        {
            if (d.Key is not { } key) continue;
            if (!into.Parked.TryGetValue(key, out var parked))
                into.Parked[key.ToArray()] = parked = new KeyRouting.ParkedKey { HeadOffset = d.ParkedBehind ?? d.OriginalOffset, ExceptionType = d.ExceptionType, FailureFrame = d.FailureFrame };
            parked.Count++;
            if (d.Reason != DeadLetterReason.Parked) parked.LatestFailure = Math.Max(parked.LatestFailure, d.Id.Offset);
        }
    }

    /// <summary>The keys with events waiting in the retry topic, from <paramref name="fromOffset"/> on.</summary>
    public static async Task FoldPendingAsync(ITransport transport, string retryTopic, int partition, long fromOffset, KeyRouting.Partition into, CancellationToken cancellationToken)
    {
        await foreach (var r in transport.ReadAsync(retryTopic, partition, fromOffset, cancellationToken).ConfigureAwait(false))
        {
            if (r.Key is not { } key || Headers.Long(r.Headers, HeaderNames.OriginalOffset) is not { } original) continue;
            if (Headers.Find(r.Headers, HeaderNames.RetryOp) is not null)
            {
                // A done marker: the event finished; copies of it before the marker are not run again.
                if (into.Pending.TryGetValue(key, out var pending))
                {
                    pending.Remove(original);
                    if (pending.Count == 0) into.Pending.Remove(key);
                }
                if (!into.Done.TryGetValue(key, out var done)) into.Done[key.ToArray()] = done = [];
                done[original] = r.Offset;
                into.DoneCount = into.Done.Count;
                continue;
            }
            if (!into.Pending.TryGetValue(key, out var set)) into.Pending[key.ToArray()] = set = [];
            set[original] = Math.Max(r.Offset, set.GetValueOrDefault(original, -1)); // the latest copy wins
        }
    }

    public static DeadLetter Parse(in TransportRecord r, string topic, string group)
    {
        var h = r.Headers;
        return new DeadLetter
        {
            Id = new DeadLetterId(r.Partition, r.Offset),
            Topic = topic,
            Group = group,
            Reason = Headers.String(h, HeaderNames.DeadLetterReason) switch
            {
                "parked" => DeadLetterReason.Parked,
                "poison" => DeadLetterReason.Poison,
                _ => DeadLetterReason.Failed,
            },
            OriginalPartition = (int)(Headers.Long(h, HeaderNames.OriginalPartition) ?? r.Partition),
            OriginalOffset = Headers.Long(h, HeaderNames.OriginalOffset) ?? -1,
            Key = r.Key,
            EventType = Headers.String(h, HeaderNames.Type),
            EventId = Headers.String(h, HeaderNames.Id),
            EventVersion = Headers.String(h, HeaderNames.DataVersion),
            Attempts = (int)(Headers.Long(h, HeaderNames.Attempts) ?? 0),
            FirstFailure = Headers.Long(h, HeaderNames.FirstFailureMs) is { } f ? DateTimeOffset.FromUnixTimeMilliseconds(f) : null,
            LastFailure = Headers.Long(h, HeaderNames.LastFailureMs) is { } l ? DateTimeOffset.FromUnixTimeMilliseconds(l) : null,
            ExceptionType = Headers.String(h, HeaderNames.ExceptionType),
            ExceptionMessage = Headers.String(h, HeaderNames.ExceptionMessage),
            StackTrace = Headers.String(h, HeaderNames.ExceptionStack),
            FailureFrame = Headers.String(h, HeaderNames.FailureFrame),
            ParkedBehind = Headers.Long(h, HeaderNames.ParkedBehind),
            Value = r.Value,
            Headers = h,
        };
    }

    /// <summary>A resolution record for the dead letter at <paramref name="offset"/>.</summary>
    public static OutgoingRecord Resolution(ReadOnlyMemory<byte>? key, long offset, string resolution) =>
        new(key, null, [
            Headers.Of(HeaderNames.DeadLetterOp, ResolveOp),
            Headers.Of(HeaderNames.Resolves, offset),
            Headers.Of(HeaderNames.Resolution, resolution),
        ]);
}
