using Herald.Subscriptions;
using Herald.Tests.Kit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Herald.Tests.Hosting;

public sealed record TicketSold(string Event, int Seat);

public sealed record TicketRefunded(string Event, int Seat);

public class OptionsValidationTests
{
    /// <summary>Configures Herald (which must not throw), then starts the host, which must: the
    /// exception it fails with.</summary>
    private static async Task<Exception> StartFailureAsync(Action<HeraldBuilder> configure)
    {
        using var dir = new TempDirectory("validation");
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddHerald(h =>
        {
            h.UseEmbedded(dir.Path, Hosts.Fast);
            configure(h);
        });
        var host = builder.Build();
        try
        {
            var error = await Record.ExceptionAsync(() => host.StartAsync());
            Assert.NotNull(error); // null: the host started despite the bad configuration
            return error is AggregateException { InnerExceptions.Count: 1 } a ? a.InnerExceptions[0] : error;
        }
        finally
        {
            await host.DisposeHostAsync();
        }
    }

    private static void Valid(HeraldBuilder h, Action<SubscriptionBuilder>? subscription = null)
    {
        h.Event<TicketSold>("tickets", e => e.Event);
        h.Subscribe("box-office", s =>
        {
            s.Handle<TicketSold>((e, ctx, ct) => ValueTask.CompletedTask);
            subscription?.Invoke(s);
        });
    }

    [Theory]
    [InlineData("MaxInFlight", "MaxInFlight")]
    [InlineData("PrefetchRecords", "PrefetchRecords")]
    [InlineData("PrefetchBytes", "PrefetchBytes")]
    [InlineData("CommitInterval", "CommitInterval")]
    [InlineData("Retry.Delayed", "Retry.Delayed[1]")]
    [InlineData("Retry.ImmediateRetries", "Retry.ImmediateRetries")]
    [InlineData("Retry.BackoffMultiplier", "Retry.BackoffMultiplier")]
    public async Task A_bad_subscription_option_fails_the_start_naming_the_field_and_the_group(string field, string named)
    {
        var error = await StartFailureAsync(h => Valid(h, s =>
        {
            switch (field)
            {
                case "MaxInFlight": s.Options.MaxInFlight = 0; break;
                case "PrefetchRecords": s.Options.PrefetchRecords = 0; break;
                case "PrefetchBytes": s.Options.PrefetchBytes = 1024; break;
                case "CommitInterval": s.Options.CommitInterval = TimeSpan.Zero; break;
                case "Retry.Delayed": s.Options.Retry.Delayed = [TimeSpan.FromSeconds(1), TimeSpan.Zero]; break;
                case "Retry.ImmediateRetries": s.Options.Retry.ImmediateRetries = -1; break;
                case "Retry.BackoffMultiplier": s.Options.Retry.BackoffMultiplier = double.NaN; break;
                default: throw new ArgumentOutOfRangeException(nameof(field), field, null);
            }
        }));
        var argument = Assert.IsAssignableFrom<ArgumentException>(error);
        Assert.Contains(named, argument.Message, StringComparison.Ordinal);
        Assert.Contains("'box-office'", argument.Message, StringComparison.Ordinal);
        Assert.Equal(field.Split('.')[^1], argument.ParamName);
    }

    [Theory]
    [InlineData("Source")]
    [InlineData("DefaultPartitions")]
    [InlineData("ShutdownTimeout")]
    public async Task A_bad_Herald_option_fails_the_start_naming_the_field(string field)
    {
        var error = await StartFailureAsync(h =>
        {
            Valid(h);
            switch (field)
            {
                case "Source": h.Options.Source = " "; break;
                case "DefaultPartitions": h.Options.DefaultPartitions = 0; break;
                case "ShutdownTimeout": h.Options.ShutdownTimeout = TimeSpan.FromSeconds(-1); break;
                default: throw new ArgumentOutOfRangeException(nameof(field), field, null);
            }
        });
        var argument = Assert.IsAssignableFrom<ArgumentException>(error);
        Assert.Contains("HeraldOptions." + field, argument.Message, StringComparison.Ordinal);
        Assert.Equal(field, argument.ParamName);
    }

    [Fact]
    public async Task A_subscription_without_handlers_fails_the_start()
    {
        var error = await StartFailureAsync(h =>
        {
            h.Event<TicketSold>("tickets", e => e.Event);
            h.Subscribe("idle", s => { });
        });
        Assert.IsAssignableFrom<ArgumentException>(error);
        Assert.Contains("'idle'", error.Message, StringComparison.Ordinal);
        Assert.Contains("handles no event type", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_handlers_for_one_type_in_one_group_fail_the_start()
    {
        var error = await StartFailureAsync(h =>
        {
            h.Event<TicketSold>("tickets", e => e.Event);
            h.Subscribe("box-office", s => s
                .Handle<TicketSold>((e, ctx, ct) => ValueTask.CompletedTask)
                .Handle<TicketSold>((e, ctx, ct) => ValueTask.CompletedTask));
        });
        Assert.IsAssignableFrom<ArgumentException>(error);
        Assert.Contains("'box-office'", error.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(TicketSold), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Handling_an_unmapped_event_type_fails_the_start_naming_the_type()
    {
        var error = await StartFailureAsync(h =>
        {
            h.Event<TicketSold>("tickets", e => e.Event);
            h.Subscribe("box-office", s => s
                .Handle<TicketSold>((e, ctx, ct) => ValueTask.CompletedTask)
                .Handle<TicketRefunded>((e, ctx, ct) => ValueTask.CompletedTask));
        });
        Assert.Contains(nameof(TicketRefunded), error.Message, StringComparison.Ordinal);
        Assert.Contains("not mapped to a topic", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_same_handlers_in_two_groups_start()
    {
        // The control for the failures above: a valid configuration starts and stops.
        using var dir = new TempDirectory("validation");
        var host = await TestHost.StartAsync(dir.Path, h =>
        {
            h.UseEmbedded(dir.Path, Hosts.Fast);
            h.Event<TicketSold>("tickets", e => e.Event);
            h.Subscribe("box-office", s => s.Handle<TicketSold>((e, ctx, ct) => ValueTask.CompletedTask));
            h.Subscribe("accounting", s => s.Handle<TicketSold>((e, ctx, ct) => ValueTask.CompletedTask));
        });
        await host.StopAndDisposeAsync();
    }
}
