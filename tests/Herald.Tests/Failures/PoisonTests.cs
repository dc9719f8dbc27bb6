using System.Text;
using Herald.DeadLetters;
using Herald.Subscriptions;

namespace Herald.Tests.Failures;

/// <summary>Events that cannot be handled at all go straight to the dead letters, without retries
/// and without a handler call.</summary>
public class PoisonTests
{
    private const string Group = "billing";
    private static readonly string RetryTopic = $"{FailureHost.Topic}.{Group}.retry";

    private static (string, string)[] CloudEvent(string id, string? type) =>
        type is null
            ? [(HeaderNames.Id, id), (HeaderNames.SpecVersion, "1.0"), (HeaderNames.ContentType, "application/json")]
            : [(HeaderNames.Id, id), (HeaderNames.Type, type), (HeaderNames.SpecVersion, "1.0"), (HeaderNames.ContentType, "application/json")];

    private static byte[] Json(string text) => Encoding.UTF8.GetBytes(text);

    [Fact]
    public async Task An_event_of_an_unknown_type_is_dead_lettered_as_poison_without_retries_or_a_handler_call()
    {
        using var dir = new TempDirectory("poison");
        var log = new CallLog();
        await using var host = await FailureHost.StartAsync(dir.Path, 1, (Group, Fast.Retry(2, 100), Fast.NoFailures(log)));
        var payload = Json("""{"Account":"p","Seq":0}""");
        var before = DateTimeOffset.UtcNow;
        Assert.Equal(0, await host.AppendRawAsync("p", payload, CloudEvent("raw-1", "NoSuchEvent")));
        await host.PublishAsync("p", 1); // behind the poison: parked
        await host.PublishAsync("q", 0); // another key: handled

        var letters = await host.WaitForDeadLettersAsync(Group, 2);
        await Eventually.WaitAsync(() => log.Handled("q").Count == 1, what: () => "q handled");
        var poison = letters[0];
        Assert.Equal(DeadLetterReason.Poison, poison.Reason);
        Assert.Equal(0, poison.Attempts);
        Assert.Equal(typeof(UnknownEventTypeException).FullName, poison.ExceptionType);
        Assert.Contains("'NoSuchEvent'", poison.ExceptionMessage);
        Assert.Contains("not a mapped event type", poison.ExceptionMessage);
        Assert.Equal("NoSuchEvent", poison.EventType);
        Assert.Equal("raw-1", poison.EventId);
        Assert.Equal("p", poison.KeyText);
        Assert.Equal((0, 0L), (poison.OriginalPartition, poison.OriginalOffset));
        Assert.Equal(payload, poison.Value!.Value.ToArray());
        Assert.NotNull(poison.FirstFailure);
        Assert.InRange(poison.FirstFailure.Value, before.AddMilliseconds(-1), DateTimeOffset.UtcNow);
        Assert.InRange(poison.LastFailure!.Value, poison.FirstFailure.Value, DateTimeOffset.UtcNow);
        Assert.StartsWith(typeof(UnknownEventTypeException).FullName!, poison.StackTrace);
        Assert.Null(poison.FailureFrame); // made, not thrown, by Herald: no application frame

        var parked = letters[1];
        Assert.Equal(DeadLetterReason.Parked, parked.Reason);
        Assert.Equal(0, parked.ParkedBehind);
        Assert.Equal(1, parked.OriginalOffset);
        Assert.Equal(poison.FailureGroup, parked.FailureGroup);

        Assert.Empty(log.Of("p")); // no handler call for either
        Assert.Equal(0, host.EndOffset(RetryTopic)); // no retries
    }

    [Fact]
    public async Task An_event_without_a_type_header_is_poison()
    {
        using var dir = new TempDirectory("poison");
        var log = new CallLog();
        await using var host = await FailureHost.StartAsync(dir.Path, 1, (Group, Fast.Retry(2, 100), Fast.NoFailures(log)));
        await host.AppendRawAsync("p", Json("""{"Account":"p","Seq":0}"""), CloudEvent("raw-2", type: null));

        var poison = Assert.Single(await host.WaitForDeadLettersAsync(Group, 1));
        Assert.Equal(DeadLetterReason.Poison, poison.Reason);
        Assert.Equal(typeof(UnknownEventTypeException).FullName, poison.ExceptionType);
        Assert.Contains($"no {HeaderNames.Type} header", poison.ExceptionMessage);
        Assert.Null(poison.EventType);
        Assert.Equal(0, poison.Attempts);
        Assert.Empty(log.All);
        Assert.Equal(0, host.EndOffset(RetryTopic));
    }

    [Fact]
    public async Task An_event_type_the_consuming_service_does_not_map_is_poison_there()
    {
        using var dir = new TempDirectory("poison");
        // A producing service that knows Refund publishes one, then a Charge of the same key.
        await using (var producer = await FailureHost.StartAsync(dir.Path, h =>
        {
            h.Event<Refund>(FailureHost.Topic, r => r.Account);
            h.Event<Charge>(FailureHost.Topic, c => c.Account);
        }))
        {
            await producer.Publisher.PublishAsync(new Refund("r", 0), new PublishOptions { Id = "refund-1" });
            await producer.PublishAsync("r", 1);
            await producer.PublishAsync("s", 0);
        }

        // The consuming service maps only Charge.
        var log = new CallLog();
        await using var consumer = await FailureHost.StartAsync(dir.Path, 1, (Group, Fast.Retry(2, 100), Fast.NoFailures(log)));
        var letters = await consumer.WaitForDeadLettersAsync(Group, 2);
        await Eventually.WaitAsync(() => log.Handled("s").Count == 1, what: () => "s handled");
        var poison = letters[0];
        Assert.Equal(DeadLetterReason.Poison, poison.Reason);
        Assert.Equal(nameof(Refund), poison.EventType);
        Assert.Equal("refund-1", poison.EventId);
        Assert.Equal(typeof(UnknownEventTypeException).FullName, poison.ExceptionType);
        Assert.Contains($"'{nameof(Refund)}'", poison.ExceptionMessage);
        Assert.Equal(0, poison.Attempts);
        Assert.Equal(DeadLetterReason.Parked, letters[1].Reason);
        Assert.Equal(nameof(Charge), letters[1].EventType);
        Assert.Empty(log.Of("r"));
        Assert.Equal(0, consumer.EndOffset(RetryTopic));
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("null")]
    [InlineData("""{"Account":5,"Seq":"x"}""")]
    [InlineData("")]
    public async Task An_undecodable_payload_is_poison(string payload)
    {
        using var dir = new TempDirectory("poison");
        var log = new CallLog();
        await using var host = await FailureHost.StartAsync(dir.Path, 1, (Group, Fast.Retry(2, 100), Fast.NoFailures(log)));
        var bytes = Json(payload);
        await host.AppendRawAsync("u", bytes, CloudEvent("raw-3", nameof(Charge)));
        await host.PublishAsync("v", 0);

        var poison = Assert.Single(await host.WaitForDeadLettersAsync(Group, 1));
        await Eventually.WaitAsync(() => log.Handled("v").Count == 1, what: () => "v handled");
        Assert.Equal(DeadLetterReason.Poison, poison.Reason);
        Assert.Equal(typeof(UndecodableEventException).FullName, poison.ExceptionType);
        Assert.Contains("could not be decoded", poison.ExceptionMessage);
        Assert.Equal(nameof(Charge), poison.EventType);
        Assert.Equal(0, poison.Attempts);
        Assert.Equal(bytes, poison.Value?.ToArray() ?? []);
        Assert.Empty(log.Of("u"));
        Assert.Equal(0, host.EndOffset(RetryTopic));
    }

    [Fact]
    public async Task In_skip_mode_a_poisoned_key_goes_on()
    {
        using var dir = new TempDirectory("poison");
        var log = new CallLog();
        var options = Fast.Retry(2, 100).Then(o => o.DeadLetterMode = DeadLetterMode.Skip);
        await using var host = await FailureHost.StartAsync(dir.Path, 1, (Group, options, Fast.NoFailures(log)));
        await host.AppendRawAsync("p", Json("{"), CloudEvent("raw-4", nameof(Charge)));
        await host.PublishAsync("p", 1);

        await Eventually.WaitAsync(() => log.Handled("p").Count == 1, what: () => "p1 handled");
        var poison = Assert.Single(await host.WaitForDeadLettersAsync(Group, 1));
        Assert.Equal(DeadLetterReason.Poison, poison.Reason);
        Assert.Equal([1], log.HandledSeqs("p"));
    }
}
