using System.Diagnostics.Metrics;
using System.Threading.Channels;
using Herald.Subscriptions;
using Herald.Transport;
using Microsoft.Extensions.Logging;

namespace Herald.Internal.Pipeline;

/// <summary>Runs one subscription (one member of its consumer group). Two loops: the fetch loop
/// pulls records from the transport while the prefetch budget has room; the dispatcher, the only
/// code that touches lanes, keys and offset trackers, orders records per key, starts handlers up
/// to MaxInFlight, and commits finished offsets. Handlers that complete synchronously run inline
/// on the dispatcher; others report back through the signal channel.</summary>
internal sealed partial class SubscriptionRunner : IAsyncDisposable
{
    private enum SignalKind { Batch, Completed, Wake, Assign, Revoke, RevokeExpired, CommitDone, Tick, Stop, ForceStop }

    private readonly record struct Signal(SignalKind Kind, object? Payload = null, bool Flag = false, TaskCompletionSource? Done = null, int Generation = 0);

    private readonly HeraldRuntime _rt;
    private readonly SubscriptionDefinition _sub;
    private readonly SubscriptionOptions _options;
    private readonly ILogger _log;
    private readonly ITransportConsumer _consumer;
    private readonly Channel<Signal> _signals = Channel.CreateUnbounded<Signal>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<TopicPartition, Lane> _lanes = [];
    private readonly Queue<Work> _ready = new();
    private readonly PrefetchBudget _mainBudget, _retryBudget;
    private readonly HashSet<string> _retryTopics = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopFetching = new();
    private readonly CancellationTokenSource _abort = new();
    private readonly Func<IEnumerable<Measurement<long>>> _lagSource;
    private CancellationTokenSource _wake = new();
    private volatile Lane[] _laneSnapshot = [];
    private int _inFlight;
    private bool _stopping;
    private TaskCompletionSource? _stopped;
    private bool _commitInFlight;
    private long _lastCommitTicks;
    private readonly List<(List<Lane> Lanes, TaskCompletionSource Done, ITimer Expiry)> _revokes = [];
    private Task _fetchLoop = Task.CompletedTask;
    private Task _dispatchLoop = Task.CompletedTask;
    private ITimer? _ticker;

    public SubscriptionRunner(HeraldRuntime runtime, SubscriptionDefinition subscription)
    {
        _rt = runtime;
        _sub = subscription;
        _options = subscription.Options;
        _log = runtime.LoggerFactory.CreateLogger("Herald.Subscription");
        _mainBudget = new PrefetchBudget(_options.PrefetchRecords, _options.PrefetchBytes);
        _retryBudget = new PrefetchBudget(_options.PrefetchRecords, _options.PrefetchBytes);
        var topics = new List<string>();
        var followers = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var t in subscription.Topics)
        {
            topics.Add(t);
            var retry = TopicNames.Retry(t, subscription.Group);
            topics.Add(retry);
            _retryTopics.Add(retry);
            followers[retry] = t;
        }
        _consumer = runtime.Transport.CreateConsumer(new ConsumerSpec
        {
            Group = subscription.Group,
            Topics = topics,
            StartFrom = _options.StartFrom,
            AlwaysFromEarliest = _retryTopics,
            Followers = followers,
            OnAssigned = OnAssignedAsync,
            OnRevoking = OnRevokingAsync,
        });
        _lagSource = ObserveLag;
    }

    public string Group => _sub.Group;

    private readonly TaskCompletionSource _firstAssignment = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once the member has its first assignment (its partitions' positions are
    /// fixed, so a group starting at the latest event gets everything published after this).</summary>
    public Task Ready => _firstAssignment.Task;

    /// <summary>Records and bytes fetched and not yet committable (main, retry), for tests and metrics.</summary>
    internal (int Records, long Bytes) PrefetchedMain => (_mainBudget.Records, _mainBudget.Bytes);

    internal (int Records, long Bytes) PrefetchedRetry => (_retryBudget.Records, _retryBudget.Bytes);

    /// <summary>The last error the fetch loop met (it keeps retrying), if any.</summary>
    public Exception? LastError { get; private set; }

    public void Start()
    {
        _started = true;
        _rt.Telemetry.AddLagSource(_lagSource);
        _dispatchLoop = Task.Run(DispatchLoopAsync);
        _fetchLoop = Task.Run(FetchLoopAsync);
        _ticker = _rt.Time.CreateTimer(_ => _signals.Writer.TryWrite(new Signal(SignalKind.Tick)), null, _options.CommitInterval, _options.CommitInterval);
    }

    /// <summary>Stops fetching, lets in-flight handlers finish (cancelling them after
    /// <paramref name="drainTimeout"/>), commits what finished and leaves the group.</summary>
    public Task StopAsync(TimeSpan drainTimeout)
    {
        lock (_signals) return _stopTask ??= StopOnceAsync(drainTimeout);
    }

    private Task? _stopTask;

    /// <summary>How long handlers get to react to cancellation after the drain timeout.</summary>
    private static readonly TimeSpan CancelGrace = TimeSpan.FromSeconds(2);
    private bool _started;

    private async Task StopOnceAsync(TimeSpan drainTimeout)
    {
        if (!_started)
        {
            await _consumer.DisposeAsync().ConfigureAwait(false);
            return;
        }
        await _stopFetching.CancelAsync().ConfigureAwait(false);
        try
        {
            await _fetchLoop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _signals.Writer.TryWrite(new Signal(SignalKind.Stop, Done: stopped));
        if (await Task.WhenAny(stopped.Task, Task.Delay(drainTimeout, _rt.Time)).ConfigureAwait(false) != stopped.Task)
        {
            LogMessages.DrainTimedOut(_log, _sub.Group, drainTimeout);
            await _abort.CancelAsync().ConfigureAwait(false);
            _signals.Writer.TryWrite(new Signal(SignalKind.Tick)); // the dispatcher drops what has not started
            if (await Task.WhenAny(stopped.Task, Task.Delay(CancelGrace, _rt.Time)).ConfigureAwait(false) != stopped.Task)
            {
                // A handler ignores its cancellation token: commit what finished and leave it behind;
                // its event stays uncommitted and is delivered again after a restart.
                _signals.Writer.TryWrite(new Signal(SignalKind.ForceStop));
            }
        }
        if (_ticker is not null) await _ticker.DisposeAsync().ConfigureAwait(false);
        _rt.Telemetry.RemoveLagSource(_lagSource);
        try
        {
            await _dispatchLoop.ConfigureAwait(false);
        }
        finally
        {
            await _consumer.DisposeAsync().ConfigureAwait(false); // leave the group whatever happened
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.Zero).ConfigureAwait(false);
        _stopFetching.Dispose();
        _abort.Dispose();
        _wake.Dispose();
    }

    private List<Measurement<long>> ObserveLag()
    {
        var lanes = _laneSnapshot;
        var result = new List<Measurement<long>>(lanes.Length);
        foreach (var lane in lanes)
        {
            var committed = Volatile.Read(ref lane.CommittedMain);
            if (committed < 0) continue;
            long end;
            try
            {
                end = _rt.Transport.GetOffsets(lane.Topic, lane.Partition).End;
            }
            catch (HeraldException)
            {
                continue;
            }
            result.Add(new Measurement<long>(Math.Max(0, end - committed),
                new KeyValuePair<string, object?>("messaging.destination.name", lane.Topic),
                new KeyValuePair<string, object?>("messaging.destination.partition.id", lane.Partition),
                new KeyValuePair<string, object?>("messaging.consumer.group.name", _sub.Group)));
        }
        return result;
    }
}
