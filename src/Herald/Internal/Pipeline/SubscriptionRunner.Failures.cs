using Herald.DeadLetters;
using Herald.Log;
using Herald.Subscriptions;
using Herald.Transport;

namespace Herald.Internal.Pipeline;

/// <summary>The failure path: a record retried later behind its key, diverted, parked or
/// dead-lettered, with the origin and failure headers, written durably.</summary>
internal sealed partial class SubscriptionRunner
{
    private const int MaxMessageChars = 4 * 1024;
    private const int MaxStackChars = 16 * 1024;
    private const int ProduceAttempts = 8;

    /// <summary>The wait before immediate retry <paramref name="retry"/>: exponential, capped, and
    /// with jitter drawn from [half, all] of the nominal wait.</summary>
    internal TimeSpan Backoff(int retry)
    {
        var nominal = _options.Retry.NominalBackoff(retry);
        return _options.Retry.Jitter ? nominal * (0.5 + Random.Shared.NextDouble() * 0.5) : nominal;
    }

    private async ValueTask<bool> PoisonAsync(Work work, PoisonEventException error)
    {
        await DeadLetterAsync(work, DeadLetterReason.Poison, error, work.PriorAttempts, work.FirstFailureMs != 0 ? work.FirstFailureMs : NowMs()).ConfigureAwait(false);
        return true;
    }

    /// <summary>Writes a done marker for a finished retry-topic event: the retry partition's commit
    /// can lag far behind (a retry waiting its due time holds it), and after a restart the marker
    /// keeps the finished copy from running again after later events of its key.</summary>
    private async Task MarkRetryDoneAsync(Work work)
    {
        if (work.Key is not { } key) return;
        var headers = new List<LogHeader>(3)
        {
            Headers.Of(HeaderNames.RetryOp, "done"),
            Headers.Of(HeaderNames.OriginalOffset, work.OriginalOffset),
            Headers.Of(HeaderNames.Group, _sub.Group),
        };
        await ProduceDurablyAsync(work.Lane.RetryTopic, work.Lane.Partition, new OutgoingRecord(key, null, headers)).ConfigureAwait(false);
    }

    private static void CompleteRetry(Work work)
    {
        if (work.IsRetry && work.Key is { } key) work.Lane.Routing.RemovePending(work.Lane.Partition, key, work.OriginalOffset);
    }

    private long NowMs() => _rt.Time.GetUtcNow().ToUnixTimeMilliseconds();

    private List<LogHeader> OriginHeaders(Work work, int extra)
    {
        var headers = Headers.WithoutHerald(work.Record.Headers, extra + 4);
        headers.Add(Headers.Of(HeaderNames.OriginalTopic, work.Lane.Topic));
        headers.Add(Headers.Of(HeaderNames.OriginalPartition, work.Lane.Partition));
        headers.Add(Headers.Of(HeaderNames.OriginalOffset, work.OriginalOffset));
        headers.Add(Headers.Of(HeaderNames.Group, _sub.Group));
        return headers;
    }

    /// <summary>Sends a failed event to the retry topic with its due time; its key's later events
    /// queue behind it.</summary>
    private async Task RetryLaterAsync(Work work, int attempts, long firstFailure, Exception? error)
    {
        var lane = work.Lane;
        var now = NowMs();
        var due = now + (long)_options.Retry.Delayed[work.Round].TotalMilliseconds;
        var headers = OriginHeaders(work, 8);
        headers.Add(Headers.Of(HeaderNames.Round, work.Round + 1));
        headers.Add(Headers.Of(HeaderNames.Attempts, attempts));
        headers.Add(Headers.Of(HeaderNames.DueMs, due));
        headers.Add(Headers.Of(HeaderNames.FirstFailureMs, firstFailure));
        headers.Add(Headers.Of(HeaderNames.LastFailureMs, now));
        if (error is not null)
        {
            headers.Add(Headers.Of(HeaderNames.ExceptionType, error.GetType().FullName ?? error.GetType().Name));
            headers.Add(Headers.Of(HeaderNames.ExceptionMessage, Truncate(error.Message, MaxMessageChars)));
        }
        if (work.ReplayMark >= 0) headers.Add(Headers.Of(HeaderNames.Replay, work.ReplayMark));
        var addedPending = false;
        if (work.Key is { } key && !work.IsRetry)
        {
            lane.Routing.AddPending(lane.Partition, key, work.OriginalOffset);
            addedPending = true;
        }
        try
        {
            var copy = await ProduceDurablyAsync(lane.RetryTopic, lane.Partition, new OutgoingRecord(work.Record.Key, work.Record.Value, headers, work.Record.TimestampMs)).ConfigureAwait(false);
            if (work.Key is { } copied) lane.Routing.SetLatestCopy(lane.Partition, copied, work.OriginalOffset, copy);
        }
        catch when (addedPending)
        {
            lane.Routing.RemovePending(lane.Partition, work.Key!.Value, work.OriginalOffset);
            throw;
        }
        _rt.Telemetry.Retried(lane.Topic, _sub.Group);
        LogMessages.RetryScheduled(_log, _sub.Group, lane.Topic, lane.Partition, work.OriginalOffset, work.Round + 1, DateTimeOffset.FromUnixTimeMilliseconds(due));
    }

    /// <summary>A key with events in the retry topic: this later event goes there too, behind them.</summary>
    private async Task DivertAsync(Work work, ReadOnlyMemory<byte> key)
    {
        var lane = work.Lane;
        var headers = OriginHeaders(work, 3);
        headers.Add(Headers.Of(HeaderNames.Round, 0));
        headers.Add(Headers.Of(HeaderNames.Attempts, 0));
        lane.Routing.AddPending(lane.Partition, key, work.OriginalOffset);
        try
        {
            var copy = await ProduceDurablyAsync(lane.RetryTopic, lane.Partition, new OutgoingRecord(work.Record.Key, work.Record.Value, headers, work.Record.TimestampMs)).ConfigureAwait(false);
            lane.Routing.SetLatestCopy(lane.Partition, key, work.OriginalOffset, copy);
        }
        catch
        {
            lane.Routing.RemovePending(lane.Partition, key, work.OriginalOffset);
            throw;
        }
    }

    private async Task DeadLetterAsync(Work work, DeadLetterReason reason, Exception? error, int attempts, long firstFailure)
    {
        var lane = work.Lane;
        var now = NowMs();
        var headers = OriginHeaders(work, 9);
        var reasonText = reason == DeadLetterReason.Poison ? "poison" : "failed";
        headers.Add(Headers.Of(HeaderNames.DeadLetterReason, reasonText));
        headers.Add(Headers.Of(HeaderNames.Attempts, attempts));
        headers.Add(Headers.Of(HeaderNames.FirstFailureMs, firstFailure));
        headers.Add(Headers.Of(HeaderNames.LastFailureMs, now));
        string? exceptionType = null, frame = null;
        if (error is not null)
        {
            exceptionType = error.GetType().FullName ?? error.GetType().Name;
            frame = FailureFrames.FirstApplicationFrame(error);
            headers.Add(Headers.Of(HeaderNames.ExceptionType, exceptionType));
            headers.Add(Headers.Of(HeaderNames.ExceptionMessage, Truncate(error.Message, MaxMessageChars)));
            headers.Add(Headers.Of(HeaderNames.ExceptionStack, Truncate(error.ToString(), MaxStackChars)));
            if (frame is not null) headers.Add(Headers.Of(HeaderNames.FailureFrame, frame));
        }
        var routing = lane.Routing;
        await routing.Gate.WaitAsync(_abort.Token).ConfigureAwait(false);
        try
        {
            var at = await ProduceDurablyAsync(lane.DeadLetterTopic, lane.Partition, new OutgoingRecord(work.Record.Key, work.Record.Value, headers, work.Record.TimestampMs)).ConfigureAwait(false);
            // Parked before it stops being pending: nothing of the key may slip through in between.
            if (work.Key is { } key && _options.DeadLetterMode == DeadLetterMode.Park)
                routing.AddParked(lane.Partition, key, work.OriginalOffset, exceptionType, frame, failureOffset: at);
            if (work.IsRetry) await MarkRetryDoneAsync(work).ConfigureAwait(false);
            CompleteRetry(work);
        }
        finally
        {
            routing.Gate.Release();
        }
        _rt.Telemetry.DeadLettered(lane.Topic, _sub.Group, reasonText);
        LogMessages.DeadLettered(_log, error, _sub.Group, lane.Topic, lane.Partition, work.OriginalOffset, reasonText, attempts);
    }

    /// <summary>Parks an event behind its key's dead letters; false when the key was unparked meanwhile.</summary>
    private async ValueTask<bool> ParkAsync(Work work, ReadOnlyMemory<byte> key)
    {
        var lane = work.Lane;
        var routing = lane.Routing;
        await routing.Gate.WaitAsync(_abort.Token).ConfigureAwait(false);
        try
        {
            if (routing.Parked(lane.Partition, key) is not { } parked || BypassesPark(work, parked)) return false;
            var headers = OriginHeaders(work, 5);
            headers.Add(Headers.Of(HeaderNames.DeadLetterReason, "parked"));
            headers.Add(Headers.Of(HeaderNames.ParkedBehind, parked.HeadOffset));
            headers.Add(Headers.Of(HeaderNames.Attempts, work.PriorAttempts));
            if (parked.ExceptionType is { } type) headers.Add(Headers.Of(HeaderNames.ExceptionType, type));
            if (parked.FailureFrame is { } frame) headers.Add(Headers.Of(HeaderNames.FailureFrame, frame));
            await ProduceDurablyAsync(lane.DeadLetterTopic, lane.Partition, new OutgoingRecord(work.Record.Key, work.Record.Value, headers, work.Record.TimestampMs)).ConfigureAwait(false);
            CompleteRetry(work);
            routing.AddParked(lane.Partition, key, parked.HeadOffset, parked.ExceptionType, parked.FailureFrame);
        }
        finally
        {
            routing.Gate.Release();
        }
        _rt.Telemetry.DeadLettered(lane.Topic, _sub.Group, "parked");
        return true;
    }

    /// <summary>Writes to a retry or dead-letter topic, retrying a failed write a bounded number of
    /// times (a full disk may clear); past that the record is abandoned uncommitted.</summary>
    private async Task<long> ProduceDurablyAsync(string topic, int partition, OutgoingRecord record)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await _rt.Transport.ProduceAsync(topic, partition, record, _abort.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (attempt < ProduceAttempts && e is not OperationCanceledException && e is not RecordTooLargeException)
            {
                var delay = TimeSpan.FromMilliseconds(100 * (1 << attempt));
                LogMessages.ProduceRetry(_log, e, _sub.Group, topic, partition, attempt, delay);
                await Task.Delay(delay, _rt.Time, _abort.Token).ConfigureAwait(false);
            }
        }
    }

    private static string Truncate(string text, int max) => text.Length <= max ? text : string.Concat(text.AsSpan(0, max), "…");
}
