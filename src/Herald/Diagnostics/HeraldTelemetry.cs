using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Herald.Diagnostics;

/// <summary>Herald's OpenTelemetry signals: the "Herald" <see cref="ActivitySource"/> (publish and
/// process spans after the messaging semantic conventions, linked through <c>traceparent</c>) and
/// the "Herald" <see cref="Meter"/>. Add both names to an OpenTelemetry SDK to export them.</summary>
public sealed class HeraldTelemetry : IDisposable
{
    public const string Name = "Herald";

    private readonly Meter _meter;

    /// <summary>What the outbox relay last saw (null without an outbox), and when (Unix ms).</summary>
    internal Outbox.OutboxStats? Outbox { get; set; }
    internal long OutboxObservedMs { get; set; }
    private readonly Counter<long> _published, _handled, _failed, _retried, _deadLettered, _deduplicated, _relayed;
    private readonly Histogram<double> _duration;
    private readonly List<Func<IEnumerable<Measurement<long>>>> _lagSources = [];

    public HeraldTelemetry(IMeterFactory? meterFactory = null)
    {
        Source = new ActivitySource(Name, typeof(HeraldTelemetry).Assembly.GetName().Version?.ToString());
        _meter = meterFactory?.Create(Name) ?? new Meter(Name);
        _published = _meter.CreateCounter<long>("herald.published", "{event}", "Events published and durable.");
        _handled = _meter.CreateCounter<long>("herald.handled", "{event}", "Events handled successfully.");
        _failed = _meter.CreateCounter<long>("herald.failed", "{attempt}", "Handler attempts that threw.");
        _retried = _meter.CreateCounter<long>("herald.retried", "{event}", "Events sent to a retry topic for a delayed retry.");
        _deadLettered = _meter.CreateCounter<long>("herald.dead_lettered", "{event}", "Events written to a dead-letter topic.");
        _deduplicated = _meter.CreateCounter<long>("herald.deduplicated", "{event}", "Redelivered events acknowledged without running their handler (the inbox or the dedupe store knew them).");
        _relayed = _meter.CreateCounter<long>("herald.outbox.relayed", "{event}", "Outbox events published by the relay.");
        _duration = _meter.CreateHistogram<double>("herald.handler.duration", "s", "Handler duration per attempt.");
        _meter.CreateObservableGauge("herald.consumer.lag", ObserveLag, "{event}", "Records not yet consumed per partition and group.");
        _meter.CreateObservableGauge("herald.outbox.pending", () => Outbox is { } o ? [new Measurement<long>(o.Pending)] : Array.Empty<Measurement<long>>(), "{event}", "Events in the outbox not yet relayed.");
        _meter.CreateObservableGauge("herald.outbox.oldest_age", () => Outbox is { OldestCreatedMs: { } oldest } ? [new Measurement<double>(Math.Max(0, (OutboxObservedMs - oldest) / 1000.0))] : Array.Empty<Measurement<double>>(), "s", "Age of the oldest event in the outbox when last looked at.");
        _meter.CreateObservableGauge("herald.outbox.stuck", () => Outbox is { } o ? [new Measurement<long>(o.Stuck)] : Array.Empty<Measurement<long>>(), "{event}", "Outbox events that failed to publish OutboxOptions.StuckAttempts times or more.");
    }

    public ActivitySource Source { get; }

    /// <summary>Whether anything listens to the handler instruments: when nothing does, the
    /// pipeline skips reading the clock twice per event (pipeline benchmark).</summary>
    internal bool HandlerMetricsEnabled => _handled.Enabled || _failed.Enabled || _duration.Enabled;

    /// <summary>Whether a publish needs a span or counts toward herald.published: when neither, the
    /// publisher completes without a state machine of its own (pipeline benchmark).</summary>
    internal bool ObservesPublishing => _published.Enabled || Source.HasListeners();

    internal Activity? StartPublish(string system, string topic)
    {
        if (!Source.HasListeners()) return null;
        var activity = Source.StartActivity($"send {topic}", ActivityKind.Producer);
        if (activity is null) return null;
        activity.SetTag("messaging.system", system);
        activity.SetTag("messaging.operation.type", "send");
        activity.SetTag("messaging.operation.name", "send");
        activity.SetTag("messaging.destination.name", topic);
        return activity;
    }

    internal Activity? StartProcess(string system, EventContext context, string group)
    {
        if (!Source.HasListeners()) return null;
        var envelope = context.Envelope;
        ActivityContext parent = default;
        ActivityLink[]? links = null;
        if (envelope.TraceParent is { } tp && ActivityContext.TryParse(tp, null, out var producer))
        {
            parent = producer;
            links = [new ActivityLink(producer)];
        }
        var activity = Source.StartActivity($"process {envelope.Topic}", ActivityKind.Consumer, parent, links: links);
        if (activity is null) return null;
        activity.SetTag("messaging.system", system);
        activity.SetTag("messaging.operation.type", "process");
        activity.SetTag("messaging.operation.name", "process");
        activity.SetTag("messaging.destination.name", envelope.Topic);
        activity.SetTag("messaging.destination.partition.id", envelope.Partition);
        activity.SetTag("messaging.consumer.group.name", group);
        activity.SetTag("messaging.message.id", envelope.Id);
        activity.SetTag("messaging.kafka.offset", envelope.Offset);
        return activity;
    }

    internal void Published(string topic) => _published.Add(1, new KeyValuePair<string, object?>("messaging.destination.name", topic));

    internal void Handled(string topic, string group, double seconds)
    {
        var tags = new TagList { { "messaging.destination.name", topic }, { "messaging.consumer.group.name", group } };
        _handled.Add(1, tags);
        _duration.Record(seconds, tags);
    }

    internal void Failed(string topic, string group, Exception error, double seconds)
    {
        var tags = new TagList { { "messaging.destination.name", topic }, { "messaging.consumer.group.name", group }, { "error.type", error.GetType().FullName } };
        _failed.Add(1, tags);
        _duration.Record(seconds, tags);
    }

    internal void Deduplicated(string topic, string group) =>
        _deduplicated.Add(1, new TagList { { "messaging.destination.name", topic }, { "messaging.consumer.group.name", group } });

    internal void Relayed(int count) => _relayed.Add(count);

    internal void Retried(string topic, string group) =>
        _retried.Add(1, new TagList { { "messaging.destination.name", topic }, { "messaging.consumer.group.name", group } });

    internal void DeadLettered(string topic, string group, string reason) =>
        _deadLettered.Add(1, new TagList { { "messaging.destination.name", topic }, { "messaging.consumer.group.name", group }, { "herald.dead_letter.reason", reason } });

    internal void AddLagSource(Func<IEnumerable<Measurement<long>>> source)
    {
        lock (_lagSources) _lagSources.Add(source);
    }

    internal void RemoveLagSource(Func<IEnumerable<Measurement<long>>> source)
    {
        lock (_lagSources) _lagSources.Remove(source);
    }

    private IEnumerable<Measurement<long>> ObserveLag()
    {
        Func<IEnumerable<Measurement<long>>>[] sources;
        lock (_lagSources) sources = [.. _lagSources];
        var all = new List<Measurement<long>>();
        foreach (var s in sources) all.AddRange(s());
        return all;
    }

    public void Dispose()
    {
        Source.Dispose();
        _meter.Dispose();
    }
}
