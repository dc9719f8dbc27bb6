using Herald.DeadLetters;

namespace Herald.Tests.Failures;

/// <summary>What a dead letter records, and how dead letters group by failure.</summary>
public class DeadLetterTests
{
    private const string Group = "billing";

    [Fact]
    public async Task A_dead_letter_keeps_the_event_its_origin_and_its_failure()
    {
        using var dir = new TempDirectory("dlq");
        var log = new CallLog();
        const int partitions = 4;
        // A key of a partition other than 0, to show the partition is kept.
        var key = Enumerable.Range(1, 50).Select(i => $"acct-{i}").First(k => FailureHost.PartitionOf(k, partitions) == 2);
        var partition = FailureHost.PartitionOf(key, partitions);
        await using var host = await FailureHost.StartAsync(dir.Path, partitions,
            (Group, Fast.Retry(1, 100), (c, ctx) => log.Handle(c, ctx, fail: (e, _) => e.Seq == 3)));
        var before = DateTimeOffset.UtcNow;
        for (var seq = 0; seq < 3; seq++) await host.PublishAsync(key, seq);
        await host.PublishAsync(key, 3, id: "evt-42");

        var letter = Assert.Single(await host.WaitForDeadLettersAsync(Group, 1));
        var after = DateTimeOffset.UtcNow;
        var original = (await host.ReadAsync(FailureHost.Topic, partition))[3];
        var calls = log.Of(key).Where(c => c.Seq == 3).ToList();
        Assert.Equal(4, calls.Count);

        Assert.Equal(DeadLetterReason.Failed, letter.Reason);
        Assert.Equal(FailureHost.Topic, letter.Topic);
        Assert.Equal(Group, letter.Group);
        Assert.Equal(partition, letter.OriginalPartition);
        Assert.Equal(partition, letter.Id.Partition); // the dead-letter topic keeps the key's partition
        Assert.Equal(3, letter.OriginalOffset);
        Assert.Equal(original.Offset, letter.OriginalOffset);
        Assert.Equal(key, letter.KeyText);
        Assert.Equal(nameof(Charge), letter.EventType);
        Assert.Equal("evt-42", letter.EventId);
        Assert.Equal(4, letter.Attempts);
        Assert.Null(letter.ParkedBehind);

        Assert.NotNull(letter.FirstFailure);
        Assert.NotNull(letter.LastFailure);
        Assert.InRange(letter.FirstFailure.Value, before.AddMilliseconds(-1), after);
        Assert.InRange(letter.LastFailure.Value, letter.FirstFailure.Value, after);
        // The first failure is the first attempt's, not reset by the delayed round.
        Assert.InRange(letter.FirstFailure.Value.ToUnixTimeMilliseconds(), calls[0].WallMs, calls[1].WallMs);
        Assert.InRange(letter.LastFailure.Value.ToUnixTimeMilliseconds(), calls[3].WallMs, after.ToUnixTimeMilliseconds());
        Assert.True(letter.LastFailure.Value - letter.FirstFailure.Value >= TimeSpan.FromMilliseconds(100 - Clock.TimerSlackMs), "first and last failure are not a delayed round apart");

        Assert.Equal(typeof(CardDeclinedException).FullName, letter.ExceptionType);
        Assert.Equal($"card declined for {key} #3", letter.ExceptionMessage);
        Assert.NotNull(letter.StackTrace);
        Assert.Contains("CardDeclinedException", letter.StackTrace);
        Assert.Contains($"{typeof(PaymentGateway).FullName}.{nameof(PaymentGateway.Charge)}", letter.StackTrace);
        Assert.Equal($"{typeof(PaymentGateway).FullName}.{nameof(PaymentGateway.Charge)}", letter.FailureFrame);
        Assert.Equal($"{typeof(CardDeclinedException).FullName} at {typeof(PaymentGateway).FullName}.Charge", letter.FailureGroup);

        Assert.Equal(original.Value!.Value.ToArray(), letter.Value!.Value.ToArray());
        Assert.Equal(new Charge(key, 3), Payload.Charge(letter.Value));
        // The event's own headers travel with it.
        foreach (var name in new[] { HeaderNames.Id, HeaderNames.Type, HeaderNames.Source, HeaderNames.Time })
            Assert.Equal(RetryTests.Header(original.Headers, name), RetryTests.Header(letter.Headers, name));
    }

    [Fact]
    public async Task The_failure_frame_of_an_async_handler_names_the_handler_method()
    {
        using var dir = new TempDirectory("dlq");
        await using var host = await FailureHost.StartAsync(dir.Path, h =>
        {
            h.Event<Charge>(FailureHost.Topic, c => c.Account);
            h.Subscribe(Group, s =>
            {
                Fast.Retry(0)(s.Options);
                s.Handle<Charge, AsyncLedgerHandler>();
            });
        });
        await host.PublishAsync("acct", 0);

        var letter = Assert.Single(await host.WaitForDeadLettersAsync(Group, 1));
        Assert.Equal(typeof(InvalidOperationException).FullName, letter.ExceptionType);
        Assert.Equal("ledger closed for acct", letter.ExceptionMessage);
        Assert.Equal($"{typeof(AsyncLedgerHandler).FullName}.{nameof(AsyncLedgerHandler.HandleAsync)}", letter.FailureFrame);
        Assert.Contains(nameof(AsyncLedgerHandler), letter.StackTrace);
        Assert.Equal(1, letter.Attempts);
    }

    [Fact]
    public async Task Dead_letters_group_by_exception_type_and_failing_method()
    {
        using var dir = new TempDirectory("groups");
        var log = new CallLog();
        Action<Charge> Thrower(Charge c) => c.Account switch
        {
            "k1" => PaymentGateway.Charge,
            "k4" => PaymentGateway.Capture,
            _ => LedgerClient.Post,
        };
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Group, Fast.Retry(0), (c, ctx) => log.Handle(c, ctx, fail: (e, _) => e.Account != "ok" && e.Seq == 0, thrower: c2 => Thrower(c2)(c2))));
        // k1 fails and parks two more events; k2 and k3 fail the same other way; k4 fails with
        // k1's exception type but in another method.
        await host.PublishAllAsync([("k1", 0), ("k2", 0), ("k1", 1), ("k3", 0), ("ok", 0), ("k1", 2), ("k4", 0)]);
        await host.WaitForDeadLettersAsync(Group, 6);

        var groups = await host.DeadLetters.GroupByFailureAsync(FailureHost.Topic, Group);
        Assert.Equal(3, groups.Count);
        var charge = groups[0];
        Assert.Equal($"{typeof(CardDeclinedException).FullName} at {typeof(PaymentGateway).FullName}.Charge", charge.FailureGroup);
        Assert.Equal(typeof(CardDeclinedException).FullName, charge.ExceptionType);
        Assert.Equal($"{typeof(PaymentGateway).FullName}.Charge", charge.FailureFrame);
        Assert.Equal(3, charge.Count); // k1's failure and the two events parked behind it
        Assert.Equal(1, charge.Keys);
        Assert.Equal("card declined for k1 #0", charge.SampleMessage);
        Assert.NotNull(charge.LastFailure);

        var ledger = groups[1];
        Assert.Equal($"{typeof(TimeoutException).FullName} at {typeof(LedgerClient).FullName}.Post", ledger.FailureGroup);
        Assert.Equal(2, ledger.Count);
        Assert.Equal(2, ledger.Keys);

        var capture = groups[2];
        Assert.Equal($"{typeof(CardDeclinedException).FullName} at {typeof(PaymentGateway).FullName}.Capture", capture.FailureGroup);
        Assert.Equal(1, capture.Count);
        Assert.Equal(1, capture.Keys);
        Assert.Equal("capture declined for k4 #0", capture.SampleMessage);

        Assert.Equal([0], log.HandledSeqs("ok"));
    }
}

/// <summary>A handler that fails after an await, in its own async method.</summary>
public sealed class AsyncLedgerHandler : IEventHandler<Charge>
{
    public async ValueTask HandleAsync(Charge evt, EventContext context, CancellationToken cancellationToken)
    {
        await Task.Yield();
        throw new InvalidOperationException($"ledger closed for {evt.Account}");
    }
}
