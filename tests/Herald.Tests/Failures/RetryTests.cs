using CsCheck;
using Herald.DeadLetters;
using Herald.Internal;
using Herald.Internal.Pipeline;
using Herald.Subscriptions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Herald.Tests.Failures;

/// <summary>Immediate retries: how many, with which attempt numbers, and how long they wait.</summary>
public class RetryTests
{
    private const string Group = "billing";

    [Fact]
    public void Nominal_backoff_doubles_from_Backoff_and_stops_at_MaxBackoff()
    {
        var retry = new RetryOptions { Backoff = TimeSpan.FromMilliseconds(10), BackoffMultiplier = 2, MaxBackoff = TimeSpan.FromMilliseconds(100) };
        var waits = Enumerable.Range(0, 8).Select(i => retry.NominalBackoff(i).TotalMilliseconds).ToArray();
        Assert.Equal([10, 20, 40, 80, 100, 100, 100, 100], waits);

        var flat = new RetryOptions { Backoff = TimeSpan.FromMilliseconds(25), BackoffMultiplier = 1, MaxBackoff = TimeSpan.FromSeconds(1) };
        Assert.All(Enumerable.Range(0, 20), i => Assert.Equal(TimeSpan.FromMilliseconds(25), flat.NominalBackoff(i)));
    }

    [Fact]
    public void Nominal_backoff_stays_between_Backoff_and_MaxBackoff_and_never_decreases_for_every_valid_setting()
    {
        var settings =
            from backoffMs in Gen.Int[0, 600_000]
            from extraMs in Gen.Int[0, 600_000]
            from multiplier in Gen.Double[1, 100]
            from retries in Gen.Int[0, 100]
            select (backoffMs, Math.Min(600_000, backoffMs + extraMs), multiplier, retries);
        settings.Sample(s =>
        {
            var (backoffMs, maxMs, multiplier, retries) = s;
            var options = new RetryOptions
            {
                ImmediateRetries = retries,
                Backoff = TimeSpan.FromMilliseconds(backoffMs),
                MaxBackoff = TimeSpan.FromMilliseconds(maxMs),
                BackoffMultiplier = multiplier,
                Delayed = [],
            };
            options.Validate(Group);
            var previous = TimeSpan.Zero;
            for (var i = 0; i <= retries; i++)
            {
                var wait = options.NominalBackoff(i);
                Assert.InRange(wait, options.Backoff, options.MaxBackoff);
                Assert.True(wait >= previous, $"retry {i} waits {wait}, less than retry {i - 1} ({previous})");
                var uncapped = backoffMs * Math.Pow(multiplier, i);
                // TimeSpan keeps 100 ns ticks: compare to within one.
                if (uncapped < maxMs) Assert.InRange(wait.TotalMilliseconds, uncapped - 0.0001, uncapped + 0.0001);
                else Assert.Equal(options.MaxBackoff, wait);
                previous = wait;
            }
        }, iter: 2_000);
    }

    [Fact]
    public async Task Jittered_backoff_is_drawn_from_half_to_all_of_the_nominal_wait_including_at_the_cap()
    {
        using var dir = new TempDirectory("backoff");
        await using var built = await RunnerHarness.CreateAsync(dir.Path, r =>
        {
            r.Backoff = TimeSpan.FromMilliseconds(10);
            r.BackoffMultiplier = 2;
            r.MaxBackoff = TimeSpan.FromMilliseconds(300); // reached at retry 5 (320 ms nominal before the cap)
        });
        var runner = built.Runner;
        var options = built.Retry;
        for (var retry = 0; retry <= 12; retry++)
        {
            var nominal = options.NominalBackoff(retry);
            if (retry >= 5) Assert.Equal(options.MaxBackoff, nominal);
            var draws = Enumerable.Range(0, 2_000).Select(_ => runner.Backoff(retry)).ToList();
            Assert.All(draws, d => Assert.InRange(d, nominal * 0.5, nominal));
            // The draws spread over the whole band: a jitter that always waited the full (or half)
            // nominal time would fail here.
            Assert.True(draws.Min() < nominal * 0.55, $"retry {retry}: shortest of 2000 draws {draws.Min()} is not near half of {nominal}");
            Assert.True(draws.Max() > nominal * 0.95, $"retry {retry}: longest of 2000 draws {draws.Max()} is not near {nominal}");
            var mean = draws.Average(d => d.TotalMilliseconds) / nominal.TotalMilliseconds;
            Assert.InRange(mean, 0.72, 0.78);
        }
    }

    [Fact]
    public async Task Without_jitter_the_backoff_is_exactly_the_nominal_wait()
    {
        using var dir = new TempDirectory("backoff");
        await using var built = await RunnerHarness.CreateAsync(dir.Path, r =>
        {
            r.Backoff = TimeSpan.FromMilliseconds(7);
            r.BackoffMultiplier = 3;
            r.MaxBackoff = TimeSpan.FromMilliseconds(500);
            r.Jitter = false;
        });
        for (var retry = 0; retry <= 8; retry++)
            Assert.Equal(built.Retry.NominalBackoff(retry), built.Runner.Backoff(retry));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    public async Task A_failing_event_gets_ImmediateRetries_plus_one_attempts_before_it_goes_to_the_retry_topic(int immediateRetries)
    {
        using var dir = new TempDirectory("immediate");
        var log = new CallLog();
        // A delayed round far in the future: after the immediate attempts the event waits in the
        // retry topic for the rest of the test.
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Group, Fast.Retry(immediateRetries, 3_600_000), (c, ctx) => log.Handle(c, ctx, fail: (_, _) => true)));
        await host.PublishAsync("acct", 0);

        var retryTopic = $"{FailureHost.Topic}.{Group}.retry";
        await Eventually.WaitAsync(() => host.EndOffset(retryTopic) == 1, what: () => $"the event in the retry topic (calls: {log.All.Count})");
        await Eventually.QuietPeriod();

        var calls = log.Of("acct");
        Assert.Equal(Enumerable.Range(1, immediateRetries + 1), calls.Select(c => c.Attempt));
        Assert.All(calls, c => Assert.False(c.Succeeded));
        var retry = Assert.Single(await host.ReadAsync(retryTopic));
        Assert.Equal((immediateRetries + 1).ToString(), Header(retry.Headers, HeaderNames.Attempts));
        Assert.Equal("1", Header(retry.Headers, HeaderNames.Round));
        Assert.Equal("0", Header(retry.Headers, HeaderNames.OriginalOffset));
        Assert.Equal(typeof(CardDeclinedException).FullName, Header(retry.Headers, HeaderNames.ExceptionType));
        Assert.Empty(await host.ListAsync(Group));
    }

    [Fact]
    public async Task Without_delayed_retries_the_event_is_dead_lettered_after_the_immediate_attempts()
    {
        using var dir = new TempDirectory("immediate");
        var log = new CallLog();
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Group, Fast.Retry(2), (c, ctx) => log.Handle(c, ctx, fail: (_, _) => true)));
        await host.PublishAsync("acct", 0);

        var letter = Assert.Single(await host.WaitForDeadLettersAsync(Group, 1));
        Assert.Equal(DeadLetterReason.Failed, letter.Reason);
        Assert.Equal(3, letter.Attempts);
        Assert.Equal([1, 2, 3], log.Of("acct").Select(c => c.Attempt));
        Assert.Equal(0, host.EndOffset($"{FailureHost.Topic}.{Group}.retry"));
    }

    [Fact]
    public async Task An_event_that_succeeds_on_an_immediate_retry_is_handled_once_and_goes_nowhere_else()
    {
        using var dir = new TempDirectory("immediate");
        var log = new CallLog();
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Group, Fast.Retry(3, 100), (c, ctx) => log.Handle(c, ctx, fail: (_, n) => n <= 2)));
        await host.PublishAsync("acct", 0);
        await host.PublishAsync("acct", 1);

        await Eventually.WaitAsync(() => log.Handled("acct").Count == 2, what: () => "both events handled");
        await Eventually.QuietPeriod();
        Assert.Equal([1, 2, 3], log.Of("acct").Where(c => c.Seq == 0).Select(c => c.Attempt));
        Assert.Equal([0, 1], log.HandledSeqs("acct"));
        Assert.Equal(0, host.EndOffset($"{FailureHost.Topic}.{Group}.retry"));
        Assert.Equal(0, host.EndOffset($"{FailureHost.Topic}.{Group}.dlq"));
    }

    [Fact]
    public async Task Immediate_retries_wait_at_least_half_their_nominal_backoff()
    {
        using var dir = new TempDirectory("immediate");
        var log = new CallLog();
        var options = Fast.Retry(3).Then(o =>
        {
            o.Retry.Backoff = TimeSpan.FromMilliseconds(40);
            o.Retry.BackoffMultiplier = 2;
            o.Retry.MaxBackoff = TimeSpan.FromMilliseconds(120);
        });
        await using var host = await FailureHost.StartAsync(dir.Path, 1, (Group, options, (c, ctx) => log.Handle(c, ctx, fail: (_, _) => true)));
        await host.PublishAsync("acct", 0);
        await host.WaitForDeadLettersAsync(Group, 1);

        var calls = log.Of("acct");
        Assert.Equal(4, calls.Count);
        double[] nominal = [40, 80, 120]; // 160 capped at 120
        for (var i = 1; i < calls.Count; i++)
        {
            var gap = calls[i].MsSince(calls[i - 1]);
            Assert.True(gap >= nominal[i - 1] / 2 - 1, $"retry {i} came {gap:F1} ms after attempt {i}, less than half of the nominal {nominal[i - 1]} ms");
            Assert.True(gap < nominal[i - 1] + 2_000, $"retry {i} came {gap:F1} ms after attempt {i}: far more than the nominal {nominal[i - 1]} ms");
        }
    }

    internal static string? Header(IReadOnlyList<Herald.Log.LogHeader> headers, string name) => Headers.String(headers, name);
}

/// <summary>A <see cref="SubscriptionRunner"/> built (not started) on a real runtime, to call its
/// backoff directly.</summary>
internal sealed class RunnerHarness : IAsyncDisposable
{
    private readonly IHost _host;

    private RunnerHarness(IHost host, SubscriptionRunner runner, RetryOptions retry)
    {
        _host = host;
        Runner = runner;
        Retry = retry;
    }

    public SubscriptionRunner Runner { get; }
    public RetryOptions Retry { get; }

    public static async Task<RunnerHarness> CreateAsync(string directory, Action<RetryOptions> configure)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddHerald(h =>
        {
            h.UseEmbedded(directory);
            h.Event<Charge>(FailureHost.Topic, c => c.Account);
            h.Subscribe("billing", s =>
            {
                configure(s.Options.Retry);
                s.Handle<Charge>((_, _, _) => ValueTask.CompletedTask);
            });
        });
        var host = builder.Build();
        var runtime = host.Services.GetRequiredService<HeraldRuntime>();
        await runtime.EnsureTopicsAsync(CancellationToken.None);
        var subscription = Assert.Single(runtime.Subscriptions);
        // Never started: the runner's consumer only joins the group; the transport goes with the host.
        return new RunnerHarness(host, new SubscriptionRunner(runtime, subscription), subscription.Options.Retry);
    }

    public async ValueTask DisposeAsync()
    {
        if (_host is IAsyncDisposable d) await d.DisposeAsync();
        else _host.Dispose();
    }
}
