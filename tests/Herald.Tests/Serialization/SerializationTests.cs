using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using Herald.Embedded;
using Herald.Log;
using Herald.Tests.Kit;
using Microsoft.Extensions.DependencyInjection;

namespace Herald.Tests.Serialization;

public sealed record ParcelShipped(string ParcelId, int WeightGrams, DateTimeOffset ShippedAt, string[] Labels);

public sealed record ParcelLost(string ParcelId);

[JsonSerializable(typeof(ParcelShipped))]
internal sealed partial class ParcelJsonContext : JsonSerializerContext;

public class SerializationTests
{
    private static readonly ParcelShipped Sample = new("p-1", 1250, new DateTimeOffset(2026, 11, 25, 13, 0, 0, TimeSpan.Zero), ["fragile", "express"]);

    [Fact]
    public async Task System_Text_Json_with_web_defaults_is_the_default()
    {
        using var dir = new TempDirectory("serialization");
        await using var log = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        var received = new ConcurrentQueue<ParcelShipped>();
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseTransport(_ => new EmbeddedTransport(log, ownsLog: false));
            h.Event<ParcelShipped>("parcels", e => e.ParcelId);
            h.Subscribe("tracking", s => s.Handle<ParcelShipped>((e, ctx, ct) =>
            {
                received.Enqueue(e);
                return ValueTask.CompletedTask;
            }));
        });
        try
        {
            await host.Services.GetRequiredService<IEventPublisher>().PublishAsync(Sample);
            await TestHost.WaitUntilAsync(() => !received.IsEmpty, TimeSpan.FromSeconds(10), "the parcel handled");
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
        var got = Assert.Single(received);
        Assert.Equal(Sample with { Labels = got.Labels }, got);
        Assert.Equal(Sample.Labels, got.Labels);

        var record = Assert.Single(RawRecords.ReadAll(log, "parcels"));
        using var json = JsonDocument.Parse(record.Value!);
        Assert.Equal("p-1", json.RootElement.GetProperty("parcelId").GetString()); // camelCase: JsonSerializerDefaults.Web
        Assert.Equal(1250, json.RootElement.GetProperty("weightGrams").GetInt32());
        Assert.Equal("application/json", record.Header(HeaderNames.ContentType));
    }

    [Fact]
    public async Task A_source_generated_context_serializes_and_deserializes_events()
    {
        using var dir = new TempDirectory("serialization");
        await using var log = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        var received = new ConcurrentQueue<ParcelShipped>();
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseTransport(_ => new EmbeddedTransport(log, ownsLog: false));
            h.UseSystemTextJson(new JsonSerializerOptions { TypeInfoResolver = ParcelJsonContext.Default });
            h.Event<ParcelShipped>("parcels", e => e.ParcelId);
            h.Subscribe("tracking", s => s.Handle<ParcelShipped>((e, ctx, ct) =>
            {
                received.Enqueue(e);
                return ValueTask.CompletedTask;
            }));
        });
        try
        {
            await host.Services.GetRequiredService<IEventPublisher>().PublishAsync(Sample);
            await TestHost.WaitUntilAsync(() => !received.IsEmpty, TimeSpan.FromSeconds(10), "the parcel handled");
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
        var got = Assert.Single(received);
        Assert.Equal(Sample.ParcelId, got.ParcelId);
        Assert.Equal(Sample.WeightGrams, got.WeightGrams);
        Assert.Equal(Sample.ShippedAt, got.ShippedAt);
        Assert.Equal(Sample.Labels, got.Labels);

        // The options given are the ones used: no naming policy, so PascalCase, where Herald's own
        // default (web) would write camelCase. The next test shows the context, not reflection, resolves types.
        var record = Assert.Single(RawRecords.ReadAll(log, "parcels"));
        using var json = JsonDocument.Parse(record.Value!);
        Assert.Equal("p-1", json.RootElement.GetProperty("ParcelId").GetString());
        Assert.Equal(1250, json.RootElement.GetProperty("WeightGrams").GetInt32());
    }

    [Fact]
    public async Task With_a_source_generated_context_an_event_type_it_does_not_know_fails_to_publish_instead_of_falling_back_to_reflection()
    {
        using var dir = new TempDirectory("serialization");
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseEmbedded(dir.Path, Hosts.Fast);
            h.UseSystemTextJson(new JsonSerializerOptions { TypeInfoResolver = ParcelJsonContext.Default });
            h.Event<ParcelLost>("parcels", e => e.ParcelId);
        });
        try
        {
            var error = await Assert.ThrowsAnyAsync<Exception>(() => host.Services.GetRequiredService<IEventPublisher>().PublishAsync(new ParcelLost("p-2")).AsTask());
            Assert.Contains(nameof(ParcelLost), error.Message, StringComparison.Ordinal);
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
    }
}
