using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Herald.Diagnostics;
using Herald.Tests.Kit;
using Microsoft.Extensions.DependencyInjection;

namespace Herald.Tests.Diagnostics;

public sealed record GaugeRead(string Gauge, int Sequence);

/// <summary>Listeners on "Herald" hear every host in the process, so each test uses a topic of its
/// own and keeps only what is tagged with it.</summary>
public class TelemetryTests
{
    private static string UniqueTopic() => "telemetry-" + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task A_publish_span_and_a_process_span_linked_through_traceparent()
    {
        var topic = UniqueTopic();
        var stopped = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == HeraldTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                if (a.GetTagItem("messaging.destination.name") as string == topic) stopped.Enqueue(a);
            },
        };
        ActivitySource.AddActivityListener(listener);

        using var dir = new TempDirectory("telemetry");
        string? handlerTraceParent = null;
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseEmbedded(dir.Path, Hosts.Fast);
            h.Event<GaugeRead>(topic, e => e.Gauge);
            h.Subscribe("dashboards", s => s.Handle<GaugeRead>((e, ctx, ct) =>
            {
                handlerTraceParent = ctx.Envelope.TraceParent;
                return ValueTask.CompletedTask;
            }));
        });
        try
        {
            await host.Services.GetRequiredService<IEventPublisher>().PublishAsync(new GaugeRead("g1", 0));
            await TestHost.WaitUntilAsync(() => stopped.Any(a => a.Kind == ActivityKind.Consumer), TimeSpan.FromSeconds(10), "the process span");
            await host.StopAsync();
        }
        finally
        {
            await host.DisposeHostAsync();
        }

        var publish = Assert.Single(stopped, a => a.Kind == ActivityKind.Producer);
        var process = Assert.Single(stopped, a => a.Kind == ActivityKind.Consumer);
        Assert.Equal($"send {topic}", publish.DisplayName);
        Assert.Equal($"process {topic}", process.DisplayName);
        Assert.Equal(HeraldTelemetry.Name, publish.Source.Name);
        Assert.Equal("send", publish.GetTagItem("messaging.operation.type"));
        Assert.Equal("process", process.GetTagItem("messaging.operation.type"));
        Assert.Equal("dashboards", process.GetTagItem("messaging.consumer.group.name"));

        // The record carries the publish span's context, and the process span continues it.
        Assert.Equal(publish.Id, handlerTraceParent);
        Assert.Equal(publish.TraceId, process.TraceId);
        Assert.Equal(publish.SpanId, process.ParentSpanId);
        var link = Assert.Single(process.Links);
        Assert.Equal(publish.TraceId, link.Context.TraceId);
        Assert.Equal(publish.SpanId, link.Context.SpanId);
    }

    [Fact]
    public async Task Counters_count_published_and_handled_events_the_histogram_records_durations_and_lag_is_observable()
    {
        var topic = UniqueTopic();
        var longs = new ConcurrentQueue<(string Name, long Value)>();
        var doubles = new ConcurrentQueue<(string Name, double Value)>();
        var lag = new ConcurrentDictionary<int, long>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == HeraldTelemetry.Name) l.EnableMeasurementEvents(instrument);
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            if (!Tagged(tags, topic)) return;
            if (instrument.Name == "herald.consumer.lag") lag[PartitionOf(tags)] = value;
            else longs.Enqueue((instrument.Name, value));
        });
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            if (Tagged(tags, topic)) doubles.Enqueue((instrument.Name, value));
        });
        listener.Start();

        using var dir = new TempDirectory("telemetry");
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseEmbedded(dir.Path, Hosts.Fast);
            h.Topic(topic, partitions: 1);
            h.Event<GaugeRead>(topic, e => e.Gauge);
            h.Subscribe("dashboards", s =>
            {
                s.Options.CommitInterval = TimeSpan.FromMilliseconds(20);
                s.Handle<GaugeRead>(async (e, ctx, ct) =>
                {
                    if (e.Sequence > 0) await release.Task.WaitAsync(ct);
                });
            });
        });
        long LagNow()
        {
            lag.Clear();
            listener.RecordObservableInstruments();
            return lag.IsEmpty ? -1 : lag.Values.Sum();
        }
        try
        {
            var publisher = host.Services.GetRequiredService<IEventPublisher>();
            await publisher.PublishAsync(new GaugeRead("g", 0));
            await TestHost.WaitUntilAsync(() => LagNow() == 0, TimeSpan.FromSeconds(10), "lag 0 after the first event");
            for (var i = 1; i <= 5; i++) await publisher.PublishAsync(new GaugeRead("g", i));
            await TestHost.WaitUntilAsync(() => LagNow() == 5, TimeSpan.FromSeconds(10), $"lag 5 while the handler is held (lag now {LagNow()})");
            release.SetResult();
            await TestHost.WaitUntilAsync(() => LagNow() == 0, TimeSpan.FromSeconds(10), $"lag 0 once handled (lag now {LagNow()})");
            await host.StopAsync();
        }
        finally
        {
            release.TrySetResult();
            await host.DisposeHostAsync();
        }

        Assert.Equal(6, longs.Where(m => m.Name == "herald.published").Sum(m => m.Value));
        Assert.Equal(6, longs.Where(m => m.Name == "herald.handled").Sum(m => m.Value));
        var durations = doubles.Where(m => m.Name == "herald.handler.duration").Select(m => m.Value).ToList();
        Assert.Equal(6, durations.Count);
        Assert.All(durations, d => Assert.True(d >= 0 && d < 60, $"duration {d} s"));
        Assert.Contains(durations, d => d > 0);
    }

    private static bool Tagged(ReadOnlySpan<KeyValuePair<string, object?>> tags, string topic)
    {
        foreach (var t in tags)
            if (t.Key == "messaging.destination.name" && t.Value as string == topic) return true;
        return false;
    }

    private static int PartitionOf(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        foreach (var t in tags)
            if (t.Key == "messaging.destination.partition.id" && t.Value is int p) return p;
        return -1;
    }
}
