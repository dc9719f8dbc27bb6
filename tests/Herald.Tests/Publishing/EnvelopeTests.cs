using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Herald.Embedded;
using Herald.Log;
using Herald.Tests.Kit;
using Herald.Transport;
using Microsoft.Extensions.DependencyInjection;

namespace Herald.Tests.Publishing;

public sealed record CartCheckedOut(string CartId, decimal Total);

public sealed record InvoiceRequested(string CartId);

public sealed record InvoiceIssued(string CartId, string Number);

public partial class EnvelopeTests
{
    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")]
    private static partial Regex Rfc3339Utc();

    [Fact]
    public async Task A_published_record_carries_the_CloudEvents_attributes_its_key_and_the_key_partition()
    {
        using var dir = new TempDirectory("envelope");
        await using var log = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseTransport(_ => new EmbeddedTransport(log, ownsLog: false));
            h.Options.Source = "urn:test:checkout";
            h.Topic("carts", partitions: 4);
            h.Event<CartCheckedOut>("carts", e => e.CartId);
        });
        var before = DateTime.UtcNow;
        try
        {
            var publisher = host.Services.GetRequiredService<IEventPublisher>();
            for (var i = 0; i < 40; i++) await publisher.PublishAsync(new CartCheckedOut($"cart-{i}", i));
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
        var after = DateTime.UtcNow;

        var records = RawRecords.ReadAll(log, "carts");
        Assert.Equal(40, records.Count);
        Assert.True(records.Select(r => r.Partition).Distinct().Count() > 1, "40 keys over 4 partitions should use more than one");
        foreach (var r in records)
        {
            Assert.NotNull(r.Key);
            Assert.Equal(Herald.Transport.Partitioner.ForKey(Encoding.UTF8.GetBytes(r.Key!), 4), r.Partition);
            Assert.False(string.IsNullOrEmpty(r.Header(HeaderNames.Id)));
            Assert.Equal("urn:test:checkout", r.Header(HeaderNames.Source));
            Assert.Equal(nameof(CartCheckedOut), r.Header(HeaderNames.Type));
            Assert.Equal("1.0", r.Header(HeaderNames.SpecVersion));
            Assert.Equal("application/json", r.Header(HeaderNames.ContentType));
            var time = r.Header(HeaderNames.Time);
            Assert.NotNull(time);
            Assert.Matches(Rfc3339Utc(), time);
            var parsed = DateTime.Parse(time!, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);
            Assert.Equal(DateTimeKind.Utc, parsed.Kind);
            Assert.InRange(parsed, before, after);
            Assert.Contains($"\"cart-", r.Value, StringComparison.Ordinal);
        }
        Assert.Equal(40, records.Select(r => r.Header(HeaderNames.Id)).Distinct().Count());
        Assert.Equal(40, records.Select(r => r.Key).Distinct().Count());
    }

    [Fact]
    public async Task The_type_attribute_is_the_mapping_name_or_the_CLR_type_name_by_default()
    {
        using var dir = new TempDirectory("envelope");
        await using var log = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseTransport(_ => new EmbeddedTransport(log, ownsLog: false));
            h.Event<CartCheckedOut>("carts", e => e.CartId);
            h.Event<InvoiceRequested>("carts", e => e.CartId, typeName: "com.example.billing.invoice-requested.v1");
        });
        try
        {
            var publisher = host.Services.GetRequiredService<IEventPublisher>();
            await publisher.PublishAsync(new CartCheckedOut("c1", 10));
            await publisher.PublishAsync(new InvoiceRequested("c1"));
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
        var types = RawRecords.ReadAll(log, "carts").OrderBy(r => r.Offset).Select(r => r.Header(HeaderNames.Type)).ToList();
        Assert.Equal(["CartCheckedOut", "com.example.billing.invoice-requested.v1"], types);
    }

    [Fact]
    public async Task Publishing_inside_an_activity_writes_its_trace_context()
    {
        using var dir = new TempDirectory("envelope");
        await using var log = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseTransport(_ => new EmbeddedTransport(log, ownsLog: false));
            h.Event<CartCheckedOut>("carts", e => e.CartId);
        });
        ActivityTraceId traceId;
        try
        {
            var publisher = host.Services.GetRequiredService<IEventPublisher>();
            using var activity = new Activity("checkout").SetIdFormat(ActivityIdFormat.W3C).Start();
            traceId = activity.TraceId;
            await publisher.PublishAsync(new CartCheckedOut("c1", 10));
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
        var traceParent = Assert.Single(RawRecords.ReadAll(log, "carts")).Header(HeaderNames.TraceParent);
        Assert.NotNull(traceParent);
        // The publish span (when something listens to "Herald") is a child of the ambient activity,
        // so the span id may differ; the trace is the same either way.
        Assert.True(ActivityContext.TryParse(traceParent, null, out var context), $"'{traceParent}' is not a W3C traceparent");
        Assert.Equal(traceId, context.TraceId);
    }

    [Fact]
    public async Task A_handler_publishing_a_follow_up_carries_the_correlation_id_and_names_the_cause()
    {
        using var dir = new TempDirectory("envelope");
        await using var log = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        var incoming = new ConcurrentDictionary<string, (string Id, string Correlation, string? Causation)>();
        var issued = new ConcurrentDictionary<string, (string Id, string Correlation, string? Causation)>();
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseTransport(_ => new EmbeddedTransport(log, ownsLog: false));
            h.Event<InvoiceRequested>("invoice-requests", e => e.CartId);
            h.Event<InvoiceIssued>("invoices", e => e.CartId);
            h.Subscribe("billing", s => s.Handle<InvoiceRequested>(async (e, ctx, ct) =>
            {
                incoming[e.CartId] = (ctx.Envelope.Id, ctx.Envelope.CorrelationId, ctx.Envelope.CausationId);
                await ctx.PublishAsync(new InvoiceIssued(e.CartId, "INV-" + e.CartId), cancellationToken: ct);
            }));
            h.Subscribe("ledger", s => s.Handle<InvoiceIssued>((e, ctx, ct) =>
            {
                issued[e.CartId] = (ctx.Envelope.Id, ctx.Envelope.CorrelationId, ctx.Envelope.CausationId);
                return ValueTask.CompletedTask;
            }));
        });
        try
        {
            var publisher = host.Services.GetRequiredService<IEventPublisher>();
            await publisher.PublishAsync(new InvoiceRequested("with-flow"), new PublishOptions { CorrelationId = "flow-42" });
            await publisher.PublishAsync(new InvoiceRequested("without-flow"));
            await TestHost.WaitUntilAsync(() => issued.Count == 2, TimeSpan.FromSeconds(10), "both follow-ups handled");
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }

        // As the handler saw them. An event published outside a handler has no cause, and without
        // a correlation id it starts a flow named by its own id.
        Assert.Null(incoming["with-flow"].Causation);
        Assert.Null(incoming["without-flow"].Causation);
        Assert.Equal(incoming["without-flow"].Id, incoming["without-flow"].Correlation);
        Assert.Equal("flow-42", incoming["with-flow"].Correlation);
        Assert.Equal("flow-42", issued["with-flow"].Correlation);
        Assert.Equal(incoming["with-flow"].Id, issued["with-flow"].Causation);
        Assert.Equal(incoming["without-flow"].Id, issued["without-flow"].Correlation);
        Assert.Equal(incoming["without-flow"].Id, issued["without-flow"].Causation);
        Assert.NotEqual(incoming["without-flow"].Id, issued["without-flow"].Id);

        // As stored: the follow-up's headers say it, not only the Envelope's fallback to its own id.
        var requests = RawRecords.ReadAll(log, "invoice-requests").ToDictionary(r => r.Key!);
        var invoices = RawRecords.ReadAll(log, "invoices").ToDictionary(r => r.Key!);
        Assert.Equal("flow-42", requests["with-flow"].Header(HeaderNames.CorrelationId));
        Assert.Null(requests["without-flow"].Header(HeaderNames.CorrelationId));
        Assert.Null(requests["without-flow"].Header(HeaderNames.CausationId));
        Assert.Equal("flow-42", invoices["with-flow"].Header(HeaderNames.CorrelationId));
        Assert.Equal(requests["with-flow"].Header(HeaderNames.Id), invoices["with-flow"].Header(HeaderNames.CausationId));
        Assert.Equal(requests["without-flow"].Header(HeaderNames.Id), invoices["without-flow"].Header(HeaderNames.CorrelationId));
        Assert.Equal(requests["without-flow"].Header(HeaderNames.Id), invoices["without-flow"].Header(HeaderNames.CausationId));
    }

    [Fact]
    public async Task An_explicit_id_becomes_the_id_attribute()
    {
        using var dir = new TempDirectory("envelope");
        await using var log = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseTransport(_ => new EmbeddedTransport(log, ownsLog: false));
            h.Event<CartCheckedOut>("carts", e => e.CartId);
        });
        try
        {
            await host.Services.GetRequiredService<IEventPublisher>().PublishAsync(new CartCheckedOut("c1", 1), new PublishOptions { Id = "order-1-checked-out" });
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
        Assert.Equal("order-1-checked-out", Assert.Single(RawRecords.ReadAll(log, "carts")).Header(HeaderNames.Id));
    }
}
