using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Text.Json;
using System.Text.Json.Serialization;
using Herald.Internal;
using Herald.Serialization;
using Herald.Tests.Kit;
using Microsoft.Extensions.DependencyInjection;

namespace Herald.Tests.Consuming;

public sealed record TicketIssued(Guid Id, int Seat, string Holder);

public sealed class MutableTicket
{
    public int Seat { get; set; }
}

public record BaseTicket(int Seat);

public sealed record VipTicket(int Seat, string Lounge) : BaseTicket(Seat);

public sealed record IgnoredPart(int Seat, [property: JsonIgnore] string? Note = null);

public sealed record WithList(int Seat, List<string> Names);

public sealed record WithImmutableArray(int Seat, ImmutableArray<string> Names);

public record Unsealed(int N);

public sealed record HoldsUnsealed(Unsealed Inner);

public sealed record Leg(string From, string To);

public sealed record Itinerary(Guid Id, Leg First, Leg? Second, DateTimeOffset At, decimal Fare, TicketKind Kind);

public enum TicketKind { Economy, Business }

public sealed class HandWrittenField(int seat)
{
    private readonly int _seat = seat;

    public int Seat => _seat;
}

public sealed record ConvertedProperty([property: JsonConverter(typeof(UpperCaseConverter))] string Name);

public sealed record ComputedProperty(int A, int B)
{
    public int Sum => A + B;
}

public sealed class UpperCaseConverter : JsonConverter<string>
{
    public override string Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.GetString()!.ToUpperInvariant();

    public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(value);
}

[JsonSerializable(typeof(TicketIssued))]
[JsonSerializable(typeof(Itinerary))]
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
public sealed partial class HandoffJsonContext : JsonSerializerContext;

public class LocalHandoffTests
{
    [Theory]
    [InlineData(typeof(TicketIssued), true)]
    [InlineData(typeof(Itinerary), true)]
    [InlineData(typeof(WithImmutableArray), true)]
    [InlineData(typeof(ComputedProperty), true)]
    [InlineData(typeof(MutableTicket), false)]           // a setter
    [InlineData(typeof(WithList), false)]                // a mutable collection
    [InlineData(typeof(HoldsUnsealed), false)]           // a field may hold a subclass
    [InlineData(typeof(object), false)]
    public void A_type_is_immutable_only_when_every_field_is_readonly_and_of_an_immutable_type(Type type, bool immutable) =>
        Assert.Equal(immutable, ImmutableTypes.IsDeeplyImmutable(type));

    [Theory]
    [InlineData(typeof(TicketIssued), true)]
    [InlineData(typeof(Itinerary), true)]
    [InlineData(typeof(WithImmutableArray), true)]
    [InlineData(typeof(ComputedProperty), true)]         // computed from carried fields
    [InlineData(typeof(IgnoredPart), false)]             // a field no JSON property carries
    [InlineData(typeof(HandWrittenField), false)]        // state outside any auto-property
    [InlineData(typeof(ConvertedProperty), false)]       // custom code on the way in
    public void The_serializer_vouches_only_for_types_whose_every_field_it_writes_and_reads_back(Type type, bool exact) =>
        Assert.Equal(exact, new SystemTextJsonEventSerializer().RoundTripsExactly(type));

    [Fact]
    public void A_source_generated_context_is_vouched_for_as_reflection_is()
    {
        var serializer = new SystemTextJsonEventSerializer(new JsonSerializerOptions(HandoffJsonContext.Default.Options));
        Assert.True(serializer.RoundTripsExactly(typeof(TicketIssued)));
        Assert.True(serializer.RoundTripsExactly(typeof(Itinerary)));
    }

    [Fact]
    public async Task An_immutable_event_published_here_reaches_the_handlers_of_every_group_as_the_published_instance()
    {
        using var dir = new TempDirectory("handoff");
        var published = new ConcurrentDictionary<int, TicketIssued>();
        var same = new ConcurrentDictionary<(string, int), bool>();
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseEmbedded(dir.Path, Hosts.Fast);
            h.Topic("tickets", partitions: 2);
            h.Event<TicketIssued>("tickets", e => e.Holder);
            foreach (var group in new[] { "billing", "gates" })
                h.Subscribe(group, s => s.Handle<TicketIssued>((e, ctx, ct) =>
                {
                    same[(ctx.Group, e.Seat)] = ReferenceEquals(e, published[e.Seat]);
                    return ValueTask.CompletedTask;
                }));
        });
        var publisher = host.Services.GetRequiredService<IEventPublisher>();
        for (var i = 0; i < 200; i++)
        {
            var ticket = new TicketIssued(Guid.NewGuid(), i, $"holder-{i % 7}");
            published[i] = ticket;
            await publisher.PublishAsync(ticket);
        }
        await TestHost.WaitUntilAsync(() => same.Count == 400, what: "both groups handling 200 tickets");
        await host.StopAndDisposeAsync();
        Assert.All(same, kv => Assert.True(kv.Value, $"{kv.Key} got a decoded copy"));
    }

    [Fact]
    public async Task A_mutable_event_is_decoded_so_no_handler_shares_the_publishers_instance()
    {
        using var dir = new TempDirectory("handoff-mutable");
        var published = new ConcurrentDictionary<int, MutableTicket>();
        var results = new ConcurrentDictionary<int, (bool Same, int Seat)>();
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseEmbedded(dir.Path, Hosts.Fast);
            h.Event<MutableTicket>("mutable");
            h.Subscribe("billing", s => s.Handle<MutableTicket>((e, ctx, ct) =>
            {
                results[e.Seat] = (ReferenceEquals(e, published[e.Seat]), e.Seat);
                return ValueTask.CompletedTask;
            }));
        });
        var publisher = host.Services.GetRequiredService<IEventPublisher>();
        for (var i = 0; i < 50; i++)
        {
            var ticket = new MutableTicket { Seat = i };
            published[i] = ticket;
            await publisher.PublishAsync(ticket);
        }
        await TestHost.WaitUntilAsync(() => results.Count == 50, what: "50 tickets handled");
        await host.StopAndDisposeAsync();
        Assert.All(results.Values, r => Assert.False(r.Same));
    }

    [Fact]
    public async Task A_subclass_published_as_its_mapped_type_is_decoded_as_the_mapped_type()
    {
        using var dir = new TempDirectory("handoff-subclass");
        var handled = new ConcurrentQueue<BaseTicket>();
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseEmbedded(dir.Path, Hosts.Fast);
            h.Event<BaseTicket>("base");
            h.Subscribe("billing", s => s.Handle<BaseTicket>((e, ctx, ct) =>
            {
                handled.Enqueue(e);
                return ValueTask.CompletedTask;
            }));
        });
        var publisher = host.Services.GetRequiredService<IEventPublisher>();
        await publisher.PublishAsync<BaseTicket>(new VipTicket(3, "north"));
        await publisher.PublishAsync(new BaseTicket(4));
        await TestHost.WaitUntilAsync(() => handled.Count == 2, what: "2 tickets handled");
        await host.StopAndDisposeAsync();
        // The subclass's own state is not what a decoded event carries: the handler sees what a restart would show.
        Assert.All(handled, t => Assert.Equal(typeof(BaseTicket), t.GetType()));
        Assert.Equal([3, 4], handled.Select(t => t.Seat).Order());
    }

    [Fact]
    public async Task With_LocalHandoff_off_every_event_is_decoded()
    {
        using var dir = new TempDirectory("handoff-off");
        var published = new ConcurrentDictionary<int, TicketIssued>();
        var same = new ConcurrentBag<bool>();
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseEmbedded(dir.Path, Hosts.Fast);
            h.Options.LocalHandoff = false;
            h.Event<TicketIssued>("tickets", e => e.Holder);
            h.Subscribe("billing", s => s.Handle<TicketIssued>((e, ctx, ct) =>
            {
                same.Add(ReferenceEquals(e, published[e.Seat]));
                return ValueTask.CompletedTask;
            }));
        });
        var publisher = host.Services.GetRequiredService<IEventPublisher>();
        for (var i = 0; i < 50; i++)
        {
            var ticket = new TicketIssued(Guid.NewGuid(), i, "h");
            published[i] = ticket;
            await publisher.PublishAsync(ticket);
        }
        await TestHost.WaitUntilAsync(() => same.Count == 50, what: "50 tickets handled");
        await host.StopAndDisposeAsync();
        Assert.DoesNotContain(true, same);
    }

    [Fact]
    public async Task Events_published_before_a_restart_are_decoded_from_the_log_with_equal_values()
    {
        using var dir = new TempDirectory("handoff-restart");
        var tickets = Enumerable.Range(0, 30).Select(i => new TicketIssued(Guid.NewGuid(), i, $"h{i % 3}")).ToList();
        var publisherOnly = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseEmbedded(dir.Path, Hosts.Fast);
            h.Event<TicketIssued>("tickets", e => e.Holder);
        });
        var publisher = publisherOnly.Services.GetRequiredService<IEventPublisher>();
        foreach (var t in tickets) await publisher.PublishAsync(t);
        await publisherOnly.StopAndDisposeAsync();

        var handled = new ConcurrentQueue<TicketIssued>();
        var consumer = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseEmbedded(dir.Path, Hosts.Fast);
            h.Event<TicketIssued>("tickets", e => e.Holder);
            h.Subscribe("billing", s => s.Handle<TicketIssued>((e, ctx, ct) =>
            {
                handled.Enqueue(e);
                return ValueTask.CompletedTask;
            }));
        });
        await TestHost.WaitUntilAsync(() => handled.Count == 30, what: "30 tickets handled after the restart");
        await consumer.StopAndDisposeAsync();
        Assert.Equal(tickets.OrderBy(t => t.Seat), handled.OrderBy(t => t.Seat)); // equal values (records compare by value)
        Assert.DoesNotContain(handled, h => tickets.Any(t => ReferenceEquals(t, h)));
    }
}
