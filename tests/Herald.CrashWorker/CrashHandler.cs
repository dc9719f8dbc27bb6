namespace Herald.CrashWorker;

/// <summary>The worker's handler: waits a little (not at all, a yield, or a few milliseconds, so
/// handlers finish out of order and some complete synchronously), appends "key seq partition
/// offset" to the handled log, prints progress, and sometimes waits a little more before
/// returning (so a kill can land between the line and the handler's end). Any failure of its own
/// is fatal to the worker.</summary>
internal sealed class CrashHandler(LineLog handled, LineLog progress, HandledCoverage coverage, PublishWindow? window, int seed)
{
    private readonly Random _random = new(seed);
    private readonly Lock _lock = new();
    private readonly TaskCompletionSource _fatal = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Faults with the first exception a handler threw.</summary>
    public Task Fatal => _fatal.Task;

    public async ValueTask HandleAsync(PipelineCrashEvent evt, EventContext context, CancellationToken cancellationToken)
    {
        try
        {
            int before, after;
            lock (_lock)
            {
                before = _random.Next(-2, 4); // -2: synchronous, -1: yield, else milliseconds
                after = _random.Next(5) == 0 ? _random.Next(1, 3) : 0;
            }
            if (before == -1) await Task.Yield();
            else if (before >= 0) await Task.Delay(before, cancellationToken);
            var envelope = context.Envelope;
            handled.Append(PipelineCrashRun.Handled(evt, envelope.Partition, envelope.Offset));
            progress.Append(PipelineCrashRun.HandledProgress + "\n");
            if (coverage.Handled(envelope.Partition, envelope.Offset)) window?.Handled(evt.Key);
            if (after > 0) await Task.Delay(after, cancellationToken);
        }
        catch (Exception e)
        {
            _fatal.TrySetException(new InvalidOperationException($"the handler failed on {evt}: {e.Message}", e));
            throw;
        }
    }
}
