using System.Diagnostics;
using Herald.DeadLetters;
using Herald.Subscriptions;
using Herald.Transport;

namespace Herald.Internal.Pipeline;

internal sealed partial class SubscriptionRunner
{
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
                older = Versioning.EventVersions.ReaderOf(mapping, version, $"{lane.Topic}/{lane.Partition} offset {work.OriginalOffset}", out var unknown);
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
}
