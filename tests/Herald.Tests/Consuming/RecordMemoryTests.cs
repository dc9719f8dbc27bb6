using System.Collections.Concurrent;
using System.Text;
using Herald.Embedded;
using Herald.Log;
using Herald.Tests.Kit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Herald.Tests.Consuming;

/// <summary>A note of a key, numbered in its key's publish order, with some text to fill the reads.</summary>
public sealed record Note(string Key, int Seq, string Text);

/// <summary>A follow-up event published by a handler's background work.</summary>
public sealed record NoteEchoed(string Key, int Seq);

/// <summary>Consumed records live in pooled read buffers that are reused once their records are
/// finished: what a handler keeps (its envelope), what the pipeline keys by (per-key order) and what
/// outlives the handler (background publishes) must not see another record's bytes.</summary>
public class RecordMemoryTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static Task<IHost> StartAsync(EmbeddedLog log, int partitions, Action<HeraldBuilder> subscribe) =>
        TestHost.StartAsync(log.Directory, h =>
        {
            h.UseTransport(_ => new EmbeddedTransport(log, ownsLog: false));
            h.Topic("notes", partitions);
            h.Topic("echoes", 1);
            h.Event<Note>("notes", n => n.Key);
            h.Event<NoteEchoed>("echoes", n => n.Key);
            subscribe(h);
        });

    private static async Task PublishAsync(IHost host, int count, int keys, int textLength)
    {
        var publisher = host.Services.GetRequiredService<IEventPublisher>();
        var pending = new List<Task>();
        var seqs = new int[keys];
        for (var i = 0; i < count; i++)
        {
            var k = i % keys;
            pending.Add(publisher.PublishAsync(new Note($"key-{k}", seqs[k]++, new string((char)('a' + i % 26), textLength))).AsTask());
            if (pending.Count == 1000)
            {
                await Task.WhenAll(pending);
                pending.Clear();
            }
        }
        await Task.WhenAll(pending);
    }

    private static List<(string, string)> Texts(IReadOnlyList<LogHeader> headers) =>
        [.. headers.Select(h => (h.Key, Encoding.UTF8.GetString(h.Value.Span))).Order()];

    [Fact]
    public async Task An_envelope_taken_during_its_handler_keeps_its_key_headers_and_id_after_tens_of_thousands_more_events_reused_the_read_buffers()
    {
        using var dir = new TempDirectory("memory");
        await using var log = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        const int events = 30_000;
        var kept = new ConcurrentDictionary<(int Partition, long Offset), Envelope>();
        var handled = 0;
        var host = await StartAsync(log, 2, h => h.Subscribe("g", s => s.Handle<Note>((n, ctx, ct) =>
        {
            // Taken, not read: its values are first read long after the handler (and its buffer) are done.
            if (n.Seq % 50 == 0 && n.Key is "key-0" or "key-1") kept[(ctx.Envelope.Partition, ctx.Envelope.Offset)] = ctx.Envelope;
            Interlocked.Increment(ref handled);
            return ValueTask.CompletedTask;
        })));
        try
        {
            await PublishAsync(host, events, 100, 200);
            await TestHost.WaitUntilAsync(() => Volatile.Read(ref handled) >= events, Timeout, $"{events} handled (have {Volatile.Read(ref handled)})");
            await host.StopAsync();
        }
        finally
        {
            await host.DisposeHostAsync();
        }

        var stored = RawRecords.ReadAll(log, "notes").ToDictionary(r => (r.Partition, r.Offset));
        Assert.Equal(2 * events / 100 / 50, kept.Count);
        foreach (var ((partition, offset), envelope) in kept)
        {
            var record = stored[(partition, offset)];
            Assert.Equal(record.Key, envelope.Key);
            Assert.Equal(record.Key, Encoding.UTF8.GetString(envelope.KeyBytes!.Value.Span));
            Assert.Equal(record.Header(HeaderNames.Id), envelope.Id);
            Assert.Equal(record.Header(HeaderNames.Type), envelope.Type);
            Assert.Equal(record.Header(HeaderNames.Source), envelope.Source);
            Assert.Equal(record.Header(HeaderNames.Id), envelope.CorrelationId);
            Assert.Equal(record.Headers.Select(h => (h.Key, h.Value)).Order().ToList(), Texts(envelope.Headers));
        }
    }

    [Fact]
    public async Task Asking_for_the_envelope_after_the_handler_returned_throws_and_one_taken_before_stays_valid()
    {
        using var dir = new TempDirectory("memory");
        await using var log = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        EventContext? untouched = null, touched = null;
        Envelope? taken = null;
        var secondOfEach = new ConcurrentDictionary<string, byte>();
        var host = await StartAsync(log, 1, h => h.Subscribe("g", s => s.Handle<Note>((n, ctx, ct) =>
        {
            if (n.Seq == 0 && n.Key == "a") untouched = ctx;
            if (n.Seq == 0 && n.Key == "b") (touched, taken) = (ctx, ctx.Envelope);
            if (n.Seq == 1) secondOfEach[n.Key] = 0; // a key's next event starts once the one before is finished
            return ValueTask.CompletedTask;
        })));
        try
        {
            var publisher = host.Services.GetRequiredService<IEventPublisher>();
            foreach (var (key, seq) in new[] { ("a", 0), ("b", 0), ("a", 1), ("b", 1) }) await publisher.PublishAsync(new Note(key, seq, "text"));
            await TestHost.WaitUntilAsync(() => secondOfEach.Count == 2, Timeout, "the second event of each key handled");
            await host.StopAsync();
        }
        finally
        {
            await host.DisposeHostAsync();
        }

        var e = Assert.Throws<InvalidOperationException>(() => untouched!.Envelope);
        Assert.Contains("handler has finished", e.Message, StringComparison.Ordinal);
        Assert.Contains("Envelope", e.Message, StringComparison.Ordinal);
        Assert.Same(taken, touched!.Envelope);
        var stored = RawRecords.ReadAll(log, "notes").Single(r => r.Key == "b" && r.Offset == taken!.Offset);
        Assert.Equal(stored.Header(HeaderNames.Id), taken!.Id);
        Assert.Equal("b", taken.Key);
    }

    /// <summary>The CsCheck property in <see cref="OrderingTests"/> publishes at most 120 small events
    /// per case, a fraction of one 64 KiB read: this runs enough through the pooled reads (8 MB in
    /// 64 KiB reads, 64 pooled buffers) that each buffer is reused many times while keys queue up.</summary>
    [Fact]
    public async Task Each_of_many_keys_is_handled_in_order_exactly_once_while_read_buffers_are_reused()
    {
        using var dir = new TempDirectory("memory");
        await using var log = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        const int events = 20_000, keys = 300;
        var producer = await StartAsync(log, 4, _ => { });
        try
        {
            await PublishAsync(producer, events, keys, 300); // all in the log first: the consumer reads whole 64 KiB buffers
        }
        finally
        {
            await producer.StopAndDisposeAsync();
        }

        var seen = new ConcurrentDictionary<string, List<int>>();
        var running = new ConcurrentDictionary<string, int>();
        var overlaps = 0;
        var handled = 0;
        var host = await StartAsync(log, 4, h => h.Subscribe("g", s =>
        {
            s.Options.MaxInFlight = 32;
            s.Handle<Note>(async (n, ctx, ct) =>
            {
                if (running.AddOrUpdate(n.Key, 1, (_, c) => c + 1) > 1) Interlocked.Increment(ref overlaps);
                var list = seen.GetOrAdd(n.Key, _ => []);
                lock (list) list.Add(n.Seq);
                switch (n.Seq % 7)
                {
                    case 1: await Task.Yield(); break;
                    case 2 when n.Seq % 70 == 2: await Task.Delay(1, ct); break;
                }
                running.AddOrUpdate(n.Key, 0, (_, c) => c - 1);
                Interlocked.Increment(ref handled);
            });
        }));
        try
        {
            await TestHost.WaitUntilAsync(() => Volatile.Read(ref handled) >= events, Timeout, $"{events} handled (have {Volatile.Read(ref handled)})");
            await host.StopAsync();
        }
        finally
        {
            await host.DisposeHostAsync();
        }

        Assert.Equal(0, overlaps);
        Assert.Equal(events, handled);
        Assert.Equal(keys, seen.Count);
        foreach (var (key, list) in seen) Assert.Equal(Enumerable.Range(0, events / keys + (int.Parse(key.AsSpan(4), System.Globalization.CultureInfo.InvariantCulture) < events % keys ? 1 : 0)), list);
    }

    [Fact]
    public async Task A_publish_from_background_work_that_outlives_its_handler_succeeds_with_causation_only_if_the_handler_took_its_envelope()
    {
        using var dir = new TempDirectory("memory");
        await using var log = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        var handlerDone = new ConcurrentDictionary<string, TaskCompletionSource>();
        var background = new ConcurrentBag<Task>();
        IEventPublisher? publisher = null;
        var host = await StartAsync(log, 1, h => h.Subscribe("g", s => s.Handle<Note>((n, ctx, ct) =>
        {
            var done = handlerDone.GetOrAdd(n.Key, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            if (n.Seq == 1)
            {
                done.TrySetResult(); // the key's first event is finished: its handler returned long ago
                return ValueTask.CompletedTask;
            }
            if (n.Key == "with-envelope") _ = ctx.Envelope.Id;
            // Fire and forget: it runs on after the handler returned, on the handler's async flow.
            background.Add(Task.Run(async () =>
            {
                await done.Task;
                await Task.Delay(20);
                await publisher!.PublishAsync(new NoteEchoed(n.Key, n.Seq));
            }, CancellationToken.None)); // deliberately not the handler's token: this outlives the handler
            return ValueTask.CompletedTask;
        })));
        try
        {
            publisher = host.Services.GetRequiredService<IEventPublisher>();
            foreach (var key in new[] { "without-envelope", "with-envelope" })
                for (var seq = 0; seq < 2; seq++) await publisher.PublishAsync(new Note(key, seq, "text"));
            await TestHost.WaitUntilAsync(() => background.Count == 2, Timeout, "two background publishes started");
            await Task.WhenAll(background).WaitAsync(Timeout);
            await host.StopAsync();
        }
        finally
        {
            await host.DisposeHostAsync();
        }

        var notes = RawRecords.ReadAll(log, "notes").GroupBy(r => r.Key!).ToDictionary(g => g.Key, g => g.MinBy(r => r.Offset)!); // each key's first note
        var echoes = RawRecords.ReadAll(log, "echoes").ToDictionary(r => r.Key!);
        Assert.Equal(2, echoes.Count);
        Assert.Null(echoes["without-envelope"].Header(HeaderNames.CausationId));
        Assert.Null(echoes["without-envelope"].Header(HeaderNames.CorrelationId));
        Assert.Equal(notes["with-envelope"].Header(HeaderNames.Id), echoes["with-envelope"].Header(HeaderNames.CausationId));
        Assert.Equal(notes["with-envelope"].Header(HeaderNames.Id), echoes["with-envelope"].Header(HeaderNames.CorrelationId));
    }
}
