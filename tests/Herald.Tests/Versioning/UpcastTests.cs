using System.Collections.Concurrent;
using Herald.DeadLetters;
using Herald.Tests.Failures;

namespace Herald.Tests.Versioning;

/// <summary>Records written at older versions are read as their version's type and upcast, step
/// by step, before the handler sees them; versions a consumer cannot read are poison.</summary>
public class UpcastTests
{
    private static readonly string RetryTopic = $"{Parcels.Topic}.{Parcels.Group}.retry";

    [Fact]
    public async Task Records_of_versions_1_2_and_3_mixed_on_one_topic_reach_the_v3_handler_upcast_and_in_order_per_key()
    {
        using var dir = new TempDirectory("upcast");
        var seen = new ConcurrentQueue<Seen>();
        var calls = new Parcels.StepCalls();
        await using var host = await FailureHost.StartAsync(dir.Path, Parcels.Consumer(seen, Fast.Retry(0), calls));
        string[] parcels = ["p1", "p2", "p3", "p4"];
        const int PerParcel = 12;
        // Interleaved across keys; each parcel's versions go 1 (no header), 1, 2, 3, … from its own start.
        var written = new Dictionary<(string, int), int>();
        for (var seq = 0; seq < PerParcel; seq++)
            for (var k = 0; k < parcels.Length; k++)
            {
                var shape = (seq + k) % 4; // 0: no header (version 1), else the version
                var version = Math.Max(shape, 1);
                written[(parcels[k], seq)] = version;
                await Parcels.AppendAsync(host.Transport, parcels[k], seq, shape == 0 ? null : shape.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    Parcels.Payload(version, parcels[k], seq));
            }

        await Eventually.WaitAsync(() => seen.Count >= parcels.Length * PerParcel, what: () => $"{parcels.Length * PerParcel} events handled (have {seen.Count})");
        Assert.Equal(parcels.Length * PerParcel, seen.Count);
        foreach (var parcel in parcels)
        {
            var mine = seen.Where(s => s.Event.Parcel == parcel).ToList();
            Assert.Equal(Enumerable.Range(0, PerParcel), mine.Select(s => s.Event.Seq)); // in order per key
            foreach (var s in mine)
            {
                Assert.Equal(Parcels.Expected(parcel, s.Event.Seq), s.Event); // every version reads as the same v3 event
                Assert.Equal(written[(parcel, s.Event.Seq)], s.DataVersion);
                Assert.Equal(1, s.Attempt);
            }
            // Step 1 → 2 ran for each v1 record, step 2 → 3 for each v1 and v2 record, nothing for v3.
            Assert.Equal(mine.Count(s => s.DataVersion == 1), calls.Of(1, parcel));
            Assert.Equal(mine.Count(s => s.DataVersion <= 2), calls.Of(2, parcel));
        }
        Assert.Contains(seen, s => s.DataVersion == 3);
        Assert.Empty(await host.DeadLetters.ListAsync(Parcels.Topic, Parcels.Group));
    }

    [Fact]
    public async Task A_record_without_the_version_header_is_version_1()
    {
        using var dir = new TempDirectory("upcast");
        var seen = new ConcurrentQueue<Seen>();
        var calls = new Parcels.StepCalls();
        await using var host = await FailureHost.StartAsync(dir.Path, Parcels.Consumer(seen, Fast.Retry(0), calls));
        // As a producer from before versioning wrote it: the v1 shape, and no ce_dataversion at all.
        await Parcels.AppendAsync(host.Transport, "old", 7, versionHeader: null, Parcels.Payload(1, "old", 7));

        await Eventually.WaitAsync(() => !seen.IsEmpty, what: () => "the event handled");
        var only = Assert.Single(seen);
        Assert.Equal(Parcels.Expected("old", 7), only.Event);
        Assert.Equal(1, only.DataVersion);
        Assert.Equal((1, 1), (calls.Of(1, "old"), calls.Of(2, "old")));
    }

    [Fact]
    public async Task An_upcaster_that_throws_is_retried_then_dead_lettered_with_its_reason_and_parks_its_key()
    {
        using var dir = new TempDirectory("upcast");
        var seen = new ConcurrentQueue<Seen>();
        var calls = new Parcels.StepCalls();
        await using var host = await FailureHost.StartAsync(dir.Path, Parcels.Consumer(seen, Fast.Retry(1, 20), calls));
        var bad = Parcels.Payload(1, "bad", 0, size: "a parcel-shaped box");
        await Parcels.AppendAsync(host.Transport, "bad", 0, "1", bad);
        await Parcels.AppendAsync(host.Transport, "bad", 1, "3", Parcels.Payload(3, "bad", 1)); // behind it: parked
        await Parcels.AppendAsync(host.Transport, "good", 0, "1", Parcels.Payload(1, "good", 0));

        var letters = await WaitForDeadLettersAsync(host, 2);
        await Eventually.WaitAsync(() => seen.Any(s => s.Event.Parcel == "good"), what: () => "the other key handled");
        var failed = letters.Single(l => l.OriginalOffset == 0 && l.Reason == DeadLetterReason.Failed);
        Assert.Equal(typeof(UpcastFailedException).FullName, failed.ExceptionType);
        Assert.Contains("ParcelMeasured from version 2 to 3 threw FormatException", failed.ExceptionMessage);
        Assert.Contains("size 'a parcel-shaped box' is not L x W x H", failed.ExceptionMessage);
        Assert.Equal($"{typeof(Dimensions).FullName}.{nameof(Dimensions.Parse)}", failed.FailureFrame);
        // Two attempts at once, then two more after the one delayed round; each one ran the chain.
        Assert.Equal(4, failed.Attempts);
        Assert.Equal(4, calls.Of(2, "bad"));
        Assert.Equal(4, calls.Of(1, "bad"));
        // What is kept is the record as written, version and all, for a replay once the upcaster is fixed.
        Assert.Equal(bad, failed.Value!.Value.ToArray());
        Assert.Equal("1", failed.EventVersion);
        var parked = letters.Single(l => l.Reason == DeadLetterReason.Parked);
        Assert.Equal("bad", parked.KeyText);
        Assert.Equal("3", parked.EventVersion);
        Assert.DoesNotContain(seen, s => s.Event.Parcel == "bad");
    }

    [Theory]
    [InlineData("4", "is version 4, newer than version 3, the newest this consumer knows")]
    [InlineData("0", "has ce_dataversion '0', which is not a version")]
    [InlineData("three", "has ce_dataversion 'three', which is not a version")]
    [InlineData("-1", "has ce_dataversion '-1', which is not a version")]
    public async Task A_record_of_a_version_this_consumer_cannot_read_is_dead_lettered_as_poison_at_once(string version, string reason)
    {
        using var dir = new TempDirectory("upcast");
        var seen = new ConcurrentQueue<Seen>();
        await using var host = await FailureHost.StartAsync(dir.Path, Parcels.Consumer(seen, Fast.Retry(2, 20)));
        await Parcels.AppendAsync(host.Transport, "future", 0, version, Parcels.Payload(3, "future", 0));
        await Parcels.AppendAsync(host.Transport, "now", 0, "3", Parcels.Payload(3, "now", 0));

        var poison = Assert.Single(await WaitForDeadLettersAsync(host, 1));
        await Eventually.WaitAsync(() => seen.Any(s => s.Event.Parcel == "now"), what: () => "the readable record handled");
        Assert.Equal(DeadLetterReason.Poison, poison.Reason);
        Assert.Equal(typeof(UnknownEventVersionException).FullName, poison.ExceptionType);
        Assert.StartsWith("ParcelMeasured at parcels/", poison.ExceptionMessage);
        Assert.Contains(reason, poison.ExceptionMessage);
        Assert.Equal(0, poison.Attempts);
        Assert.Equal(version, poison.EventVersion);
        Assert.DoesNotContain(seen, s => s.Event.Parcel == "future");
        Assert.Equal(0, await CountAsync(host, RetryTopic)); // no retries
    }

    [Fact]
    public async Task A_version_older_than_the_oldest_upcaster_is_poison_naming_the_oldest()
    {
        using var dir = new TempDirectory("upcast");
        var seen = new ConcurrentQueue<Seen>();
        await using var host = await FailureHost.StartAsync(dir.Path, h =>
        {
            h.Topic(Parcels.Topic, Parcels.Partitions);
            // Version 1 is retired: only version 2 is still read.
            h.Event<ParcelMeasured>(Parcels.Topic, e => e.Parcel)
                .Version(3)
                .Upcast(2, (ParcelMeasuredV2 v2) => new ParcelMeasured(v2.Parcel, v2.Seq, v2.Kilograms, 1, 1, 1));
            h.Subscribe(Parcels.Group, s => s.Handle<ParcelMeasured>((e, ctx, ct) =>
            {
                seen.Enqueue(new Seen(e, ctx.Envelope.DataVersion, ctx.Attempt));
                return ValueTask.CompletedTask;
            }));
        });
        await Parcels.AppendAsync(host.Transport, "ancient", 0, null, Parcels.Payload(1, "ancient", 0));
        await Parcels.AppendAsync(host.Transport, "recent", 0, "2", Parcels.Payload(2, "recent", 0));

        var poison = Assert.Single(await WaitForDeadLettersAsync(host, 1));
        await Eventually.WaitAsync(() => seen.Any(s => s.Event.Parcel == "recent"), what: () => "the v2 record handled");
        Assert.Equal(DeadLetterReason.Poison, poison.Reason);
        Assert.Equal(typeof(UnknownEventVersionException).FullName, poison.ExceptionType);
        Assert.Contains("is version 1, and no type is registered for it: the oldest upcaster of ParcelMeasured reads version 2", poison.ExceptionMessage);
        Assert.Null(poison.EventVersion);
        Assert.Equal(2, Assert.Single(seen).DataVersion);
    }

    [Fact]
    public async Task A_type_without_upcasters_dead_letters_a_newer_version_as_poison_and_handles_its_own()
    {
        using var dir = new TempDirectory("upcast");
        var handled = new ConcurrentQueue<int>();
        await using var host = await FailureHost.StartAsync(dir.Path, h =>
        {
            h.Topic(Parcels.Topic, Parcels.Partitions);
            h.Event<LabelPrinted>(Parcels.Topic, e => e.Parcel);
            h.Subscribe(Parcels.Group, s => s.Handle<LabelPrinted>((e, ctx, ct) =>
            {
                handled.Enqueue(e.Seq);
                return ValueTask.CompletedTask;
            }));
        });
        var label = System.Text.Encoding.UTF8.GetBytes("""{"parcel":"l","seq":0}""");
        await Parcels.AppendAsync(host.Transport, "l", 0, "2", label, nameof(LabelPrinted));
        await Parcels.AppendAsync(host.Transport, "m", 1, null, """{"parcel":"m","seq":1}"""u8.ToArray(), nameof(LabelPrinted));
        await Parcels.AppendAsync(host.Transport, "n", 2, "1", """{"parcel":"n","seq":2}"""u8.ToArray(), nameof(LabelPrinted));

        var poison = Assert.Single(await WaitForDeadLettersAsync(host, 1));
        await Eventually.WaitAsync(() => handled.Count == 2, what: () => "the version 1 records handled");
        Assert.Equal(DeadLetterReason.Poison, poison.Reason);
        Assert.Contains("LabelPrinted at parcels/", poison.ExceptionMessage);
        Assert.Contains("is version 2, newer than version 1", poison.ExceptionMessage);
        Assert.Equal([1, 2], handled.Order());
    }

    private static async Task<IReadOnlyList<DeadLetter>> WaitForDeadLettersAsync(FailureHost host, int count)
    {
        IReadOnlyList<DeadLetter> letters = [];
        await Eventually.WaitAsync(async () => (letters = await host.DeadLetters.ListAsync(Parcels.Topic, Parcels.Group)).Count == count, what: () =>
            $"{count} dead letters (have {letters.Count}: {FailureHost.Describe(letters)})");
        return letters;
    }

    /// <summary>Event records in every partition of a topic (the retry topic's done markers left out).</summary>
    private static async Task<int> CountAsync(FailureHost host, string topic)
    {
        var count = 0;
        for (var p = 0; p < Parcels.Partitions; p++) count += (await host.ReadAsync(topic, p)).Count;
        return count;
    }
}
