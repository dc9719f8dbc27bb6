using System.Diagnostics;
using Herald.DeadLetters;
using Herald.Log;
using Herald.Subscriptions;
using Herald.Transport;

namespace Herald.Internal.Pipeline;

internal sealed partial class SubscriptionRunner
{
    private const int MaxMessageChars = 4 * 1024;
    private const int MaxStackChars = 16 * 1024;
    private const int ProduceAttempts = 8;

    /// <summary>Takes a record to its end: handled, sent behind its key in the retry topic, parked
    /// or dead-lettered. True when the record is finished (committable); false when it was
    /// abandoned (shutdown timeout, or the retry or dead-letter topic could not be written).
    /// Completes synchronously when the handler does and the key is not blocked.</summary>
    private ValueTask<bool> ProcessAsync(Work work)
    {
        // Not async itself: the common case (a key with nothing waiting) goes straight to the one
        // state machine of HandleAsync (pipeline benchmark).
        try
        {
            if (work.IsRetry && (work.IsMarker || (work.Key is { } copyKey && work.Lane.RoutingState.DoneCount > 0
                && work.Lane.Routing.IsDone(work.Lane.Partition, copyKey, work.OriginalOffset, work.Record.Offset))))
                return new ValueTask<bool>(true); // a done marker, or a copy finished before a restart
            if (IsForOtherGroups(work))
            {
                // A mapped type this group has no handler for: nothing to do, whatever its key's state.
                CompleteRetry(work);
                return new ValueTask<bool>(true);
            }
            if (work.Detached) return DivertDetachedAsync(work, work.Key!.Value);
            if (work.Key is { } key && work.Lane.RoutingState.Blocked > 0) return ProcessBlockedKeyAsync(work, key);
        }
        catch (Exception e)
        {
            return new ValueTask<bool>(Stalled(work, e));
        }
        return HandleAsync(work);
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> ProcessBlockedKeyAsync(Work work, ReadOnlyMemory<byte> key)
    {
        try
        {
            if (await RouteBlockedKeyAsync(work, key).ConfigureAwait(false)) return true;
        }
        catch (OperationCanceledException) when (_abort.IsCancellationRequested)
        {
            return false;
        }
        catch (Exception e)
        {
            return Stalled(work, e);
        }
        return await HandleAsync(work).ConfigureAwait(false);
    }

    /// <summary>A main-topic record detached from its key's queue (its head waits for a retry due
    /// time) never runs its handler: it is parked or diverted behind the key's pending events, its
    /// own pending entry added before anything else of the key can start.</summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> DivertDetachedAsync(Work work, ReadOnlyMemory<byte> key)
    {
        try
        {
            var routing = work.Lane.Routing;
            var p = work.Lane.Partition;
            if (routing.IsPending(p, key, work.Record.Offset)) return true; // already there: a redelivery
            if (routing.Parked(p, key) is { } parked && !BypassesPark(work, parked) && await ParkAsync(work, key).ConfigureAwait(false)) return true;
            await DivertAsync(work, key).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) when (_abort.IsCancellationRequested)
        {
            return false;
        }
        catch (Exception e)
        {
            return Stalled(work, e);
        }
    }

    /// <summary>The record could not be finished (its retry or dead-letter write failed for good).</summary>
    private bool Stalled(Work work, Exception e)
    {
        LastError = e;
        LogMessages.RecordStalled(_log, e, _sub.Group, work.Record.Topic, work.Record.Partition, work.Record.Offset);
        return false;
    }

    /// <summary>Resolves the record's event type once (into the work) and says whether it is a
    /// mapped type this group does not handle.</summary>
    private bool IsForOtherGroups(Work work)
    {
        work.TypeName = Headers.Find(work.Record.Headers, HeaderNames.Type);
        if (work.TypeName is { } name && _lastMapping is { } last && name.Span.SequenceEqual(last.NameUtf8))
        {
            // Records mostly come in runs of one type: compare with the last one before hashing.
            work.Mapping = last;
            work.Binding = _lastBinding;
        }
        else
        {
            work.Mapping = work.TypeName is { } n && _rt.Map.TryGet(n, out var mapping) ? mapping : null;
            work.Binding = work.Mapping is { } m && _sub.Bindings.TryGetValue(m, out var binding) ? binding : null;
            if (work.Mapping is not null) (_lastMapping, _lastBinding) = (work.Mapping, work.Binding);
        }
        return work.Mapping is not null && work.Binding is null;
    }

    private EventMapping? _lastMapping; // dispatcher only
    private HandlerEnvironment? _handlerEnvironment; // dispatcher only
    private Subscriptions.HandlerBinding? _lastBinding;

    /// <summary>For a key with events in the retry topic or dead letters: keeps its order.</summary>
    private async ValueTask<bool> RouteBlockedKeyAsync(Work work, ReadOnlyMemory<byte> key)
    {
        var lane = work.Lane;
        var routing = lane.Routing;
        var p = lane.Partition;
        if (work.IsRetry && routing.IsStaleCopy(p, key, work.OriginalOffset, work.Record.Offset))
            return true; // a newer copy of this event waits further on in the retry topic
        if (routing.Parked(p, key) is { } parked && !BypassesPark(work, parked) && await ParkAsync(work, key).ConfigureAwait(false)) return true;
        if (!work.IsRetry)
        {
            // Already waiting in the retry topic: this is a redelivery after a restart.
            if (routing.IsPending(p, key, work.Record.Offset)) return true;
            if (routing.TryGetMinPending(p, key, out _))
            {
                await DivertAsync(work, key).ConfigureAwait(false);
                return true;
            }
        }
        else if (routing.TryGetMinPending(p, key, out var min) && min < work.OriginalOffset)
        {
            // An earlier event of the key went back to the end of the retry topic: follow it there.
            var copy = await ProduceDurablyAsync(lane.RetryTopic, p, new OutgoingRecord(work.Record.Key, work.Record.Value, work.Record.Headers, work.Record.TimestampMs)).ConfigureAwait(false);
            routing.SetLatestCopy(p, key, work.OriginalOffset, copy);
            return true;
        }
        return false;
    }

    /// <summary>A replayed event runs although its key is parked by the dead letters it was
    /// replayed from, but not once the key failed again after the replay.</summary>
    private static bool BypassesPark(Work work, KeyRouting.ParkedKey parked) =>
        work.ReplayMark >= 0 && parked.LatestFailure < work.ReplayMark;

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]

    private async ValueTask<bool> HandleAsync(Work work)
    {
        try
        {
            var record = work.Record;
            var lane = work.Lane;
            if (work.TypeName is not { } typeName)
                return await PoisonAsync(work, new UnknownEventTypeException($"record {lane.Topic}/{lane.Partition} offset {work.OriginalOffset} has no {HeaderNames.Type} header")).ConfigureAwait(false);
            if (work.Mapping is not { } mapping || work.Binding is not { } binding)
                return await PoisonAsync(work, new UnknownEventTypeException($"{HeaderNames.Type} '{System.Text.Encoding.UTF8.GetString(typeName.Span)}' of record {lane.Topic}/{lane.Partition} offset {work.OriginalOffset} is not a mapped event type")).ConfigureAwait(false);
            // A record at the current version (the header's bytes equal, or absent at version 1) is
            // read as the handler's type; only an older one needs a reader and its upcasters.
            var version = Headers.Find(record.Headers, HeaderNames.DataVersion);
            Versioning.VersionReader? older = null;
            if (version is { } written ? !written.Span.SequenceEqual(mapping.VersionUtf8) : mapping.Version != 1)
            {
                older = OlderVersion(work, mapping, version, out var unknown);
                if (unknown is not null) return await PoisonAsync(work, unknown).ConfigureAwait(false);
            }
            object evt;
            try
            {
                var data = record.Value is { } v ? v.Span : default;
                evt = older is null ? binding.Deserialize(_rt.Serializer, data) : older.Deserialize(_rt.Serializer, data);
            }
            catch (Exception e)
            {
                var what = older is null ? mapping.Name : $"{mapping.Name} version {older.Version} (read as {older.ClrType.Name})";
                return await PoisonAsync(work, new UndecodableEventException($"{what} at {lane.Topic}/{lane.Partition} offset {work.OriginalOffset} could not be decoded: {e.Message}", e)).ConfigureAwait(false);
            }

            var context = new EventContext(work, _handlerEnvironment ??= new HandlerEnvironment(_rt.Publisher, _rt.Services, _sub.Group, _abort.Token), work.PriorAttempts + 1);
            EventContext.Current = context; // undone when this async method returns to the dispatcher
            var attempts = work.PriorAttempts;
            var firstFailure = work.FirstFailureMs;
            Exception? error = null;
            try
            {
                for (var retry = 0; ; retry++)
                {
                    context.Attempt = ++attempts;
                    var activity = _rt.Telemetry.StartProcess(_rt.Transport.Name, context, _sub.Group);
                    var metrics = _rt.Telemetry.HandlerMetricsEnabled;
                    var started = metrics ? Stopwatch.GetTimestamp() : 0;
                    try
                    {
                        if (older is not null)
                        {
                            // Upcast before the inbox check; once it succeeded, later attempts reuse the result.
                            evt = older.Upcast(evt);
                            older = null;
                        }
                        if (_options.Idempotency == Idempotency.None) await binding.InvokeAsync(evt, context).ConfigureAwait(false);
                        else if (!await HandleOnceAsync(work, binding, evt, context).ConfigureAwait(false))
                        {
                            // Handled before (its inbox entry or dedupe mark is there): acknowledged without running again.
                            _rt.Telemetry.Deduplicated(lane.Topic, _sub.Group);
                            activity?.Dispose();
                            if (work.IsRetry) await MarkRetryDoneAsync(work).ConfigureAwait(false);
                            CompleteRetry(work);
                            return true;
                        }
                        if (metrics) _rt.Telemetry.Handled(lane.Topic, _sub.Group, Stopwatch.GetElapsedTime(started).TotalSeconds);
                        activity?.Dispose();
                        if (work.IsRetry) await MarkRetryDoneAsync(work).ConfigureAwait(false);
                        CompleteRetry(work);
                        return true;
                    }
                    catch (Exception e) when (!(e is OperationCanceledException && _abort.IsCancellationRequested))
                    {
                        error = e;
                        if (firstFailure == 0) firstFailure = NowMs();
                        if (metrics) _rt.Telemetry.Failed(lane.Topic, _sub.Group, e, Stopwatch.GetElapsedTime(started).TotalSeconds);
                        if (activity is not null)
                        {
                            activity.SetStatus(ActivityStatusCode.Error, e.Message);
                            activity.SetTag("error.type", e.GetType().FullName);
                            activity.Dispose();
                        }
                        LogMessages.HandlerFailed(_log, e, _sub.Group, mapping.Name, lane.Topic, lane.Partition, work.OriginalOffset, attempts);
                        if (retry >= _options.Retry.ImmediateRetries) break;
                    }
                    // Each attempt gets a fresh DI scope: a failed unit of work must not carry its state over.
                    await DisposeScopeQuietlyAsync(context).ConfigureAwait(false);
                    await Task.Delay(Backoff(retry), _rt.Time, _abort.Token).ConfigureAwait(false);
                }
            }
            finally
            {
                if (context.HasScope) await DisposeScopeQuietlyAsync(context).ConfigureAwait(false);
                context.Finish();
            }

            if (work.Round < _options.Retry.Delayed.Count)
            {
                await RetryLaterAsync(work, attempts, firstFailure, error).ConfigureAwait(false);
                return true;
            }
            await DeadLetterAsync(work, DeadLetterReason.Failed, error, attempts, firstFailure).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) when (_abort.IsCancellationRequested)
        {
            return false;
        }
        catch (Exception e)
        {
            return Stalled(work, e);
        }
    }

    /// <summary>The reader of a record whose <c>ce_dataversion</c> is not the current version's bytes:
    /// null with <paramref name="unknown"/> null when it is the current version after all (say "03"
    /// for 3); null with <paramref name="unknown"/> set when this consumer cannot read it (not a
    /// number, newer than the current version, or older than the oldest upcaster).</summary>
    private static Versioning.VersionReader? OlderVersion(Work work, EventMapping mapping, ReadOnlyMemory<byte>? header, out PoisonEventException? unknown)
    {
        unknown = null;
        var lane = work.Lane;
        var where = $"{lane.Topic}/{lane.Partition} offset {work.OriginalOffset}";
        var version = 1;
        if (header is { } h && (!System.Buffers.Text.Utf8Parser.TryParse(h.Span, out version, out var used) || used != h.Length || version < 1))
        {
            unknown = new UnknownEventVersionException($"{mapping.Name} at {where} has {HeaderNames.DataVersion} '{System.Text.Encoding.UTF8.GetString(h.Span)}', which is not a version (1, 2, 3, …)");
            return null;
        }
        if (version == mapping.Version) return null;
        if (version > mapping.Version)
        {
            unknown = new UnknownEventVersionException($"{mapping.Name} at {where} is version {version}, newer than version {mapping.Version}, the newest this consumer knows: upgrade the consumer (register version {version}) and replay it");
            return null;
        }
        if (mapping.Versions?.Reader(version) is { } reader) return reader;
        unknown = new UnknownEventVersionException(mapping.Versions is { Oldest: var oldest } && oldest < mapping.Version
            ? $"{mapping.Name} at {where} is version {version}, and no type is registered for it: the oldest upcaster of {mapping.Name} reads version {oldest}"
            : $"{mapping.Name} at {where} is version {version}, and no type is registered for it: {mapping.Name} has no upcasters to its current version {mapping.Version}");
        return null;
    }

    /// <summary>One attempt with the subscription's idempotency: with the inbox, inside a transaction
    /// on Herald's store that records the event, holds the handler's effects and its outbox events,
    /// and commits once the handler returns (rolled back if it throws); with a dedupe store, skipped
    /// when the event's id is marked, and marked once the handler succeeded. False when the event
    /// was handled before and the handler did not run.</summary>
    private async ValueTask<bool> HandleOnceAsync(Work work, HandlerBinding binding, object evt, EventContext context)
    {
        var id = EventId(work);
        if (_options.Idempotency == Idempotency.Dedupe)
        {
            var dedupe = _rt.Dedupe!;
            var key = string.Concat(_sub.Group, "/", id);
            if (await dedupe.ContainsAsync(key, _abort.Token).ConfigureAwait(false)) return false;
            await binding.InvokeAsync(evt, context).ConfigureAwait(false);
            await dedupe.TryMarkAsync(key, _options.DedupeTtl, _abort.Token).ConfigureAwait(false);
            return true;
        }
        var unit = await UnitOfWork.BeginAsync(_rt.Inbox!, _rt.Outbox!, _abort.Token).ConfigureAwait(false);
        try
        {
            if (!await _rt.Inbox!.TryRecordAsync(unit.Transaction, _sub.Group, id, NowMs(), _abort.Token).ConfigureAwait(false)) return false;
            context.UnitOfWork = unit;
            await binding.InvokeAsync(evt, context).ConfigureAwait(false);
            await unit.CommitAsync(_abort.Token).ConfigureAwait(false);
            return true;
        }
        finally
        {
            context.UnitOfWork = null;
            try
            {
                await unit.DisposeAsync().ConfigureAwait(false); // rolls back unless committed
            }
            catch (Exception e)
            {
                LogMessages.TransactionDisposeFailed(_log, e, _sub.Group);
            }
        }
    }

    /// <summary>The event's id for the inbox and dedupe: its <c>ce_id</c>, or where it was first
    /// written when it has none (a record from a plain client).</summary>
    private static string EventId(Work work) =>
        Headers.String(work.Record.Headers, HeaderNames.Id) is { Length: > 0 } id
            ? id
            : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{work.Lane.Topic}/{work.Lane.Partition}/{work.OriginalOffset}");

    /// <summary>Disposes the event's DI scope; a service that throws while being disposed is logged
    /// and does not undo the handler's outcome.</summary>
    private async ValueTask DisposeScopeQuietlyAsync(EventContext context)
    {
        try
        {
            await context.DisposeScopeAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            LogMessages.ScopeDisposeFailed(_log, e, _sub.Group);
        }
    }

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
