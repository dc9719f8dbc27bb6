using System.Diagnostics;
using System.Reflection;
using Herald.Dedupe;

namespace Herald.Testing;

/// <summary>
/// What every <see cref="IDedupeStore"/> must do, run against each one by deriving from this class
/// (a linked source file in each store's test project). Each test gets a fresh, empty store from
/// <see cref="CreateStore"/>; time to live is real time, kept short, and awaited by polling with a
/// deadline rather than by sleeping.
/// </summary>
/// <remarks>A test assembly whose store needs a service that may be missing declares it once with an
/// assembly-level attribute derived from <see cref="DedupeContractSkipAttribute"/>.</remarks>
public abstract class DedupeStoreContract : IAsyncLifetime
{
    /// <summary>Short enough to wait out, long enough for a local store to answer many times within it.</summary>
    protected static readonly TimeSpan ShortTtl = TimeSpan.FromMilliseconds(300);

    /// <summary>Longer than any test.</summary>
    protected static readonly TimeSpan LongTtl = TimeSpan.FromMinutes(5);

    /// <summary>How long after its time to live a mark may still be seen before the test fails.</summary>
    protected static readonly TimeSpan ExpiryGrace = TimeSpan.FromSeconds(1);

    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(10);

    private IDedupeStore? _store;

    /// <summary>A new store with no marks, its own (a fresh file, a fresh key prefix).</summary>
    protected abstract IDedupeStore CreateStore();

    /// <summary>This test's store, created at first use (so that tests that never touch it need no service).</summary>
    protected IDedupeStore Store => _store ??= CreateStore();

    /// <summary>Whether <see cref="Store"/> was created.</summary>
    protected bool StoreCreated => _store is not null;

    public Task InitializeAsync() => Task.CompletedTask;

    public virtual async Task DisposeAsync()
    {
        if (_store is IAsyncDisposable asyncDisposable) await asyncDisposable.DisposeAsync();
        else if (_store is IDisposable disposable) disposable.Dispose();
    }

    [DedupeContractFact]
    public async Task The_first_mark_of_a_key_wins_and_later_marks_do_not()
    {
        Assert.True(await Store.TryMarkAsync("orders/evt-1", LongTtl));
        Assert.False(await Store.TryMarkAsync("orders/evt-1", LongTtl));
        Assert.False(await Store.TryMarkAsync("orders/evt-1", ShortTtl));

        Assert.True(await Store.TryMarkAsync("orders/evt-2", LongTtl));
        Assert.False(await Store.TryMarkAsync("orders/evt-2", LongTtl));
        Assert.True(await Store.ContainsAsync("orders/evt-1"));
    }

    [DedupeContractFact]
    public async Task Keys_compare_exactly_so_case_spaces_and_unicode_forms_are_distinct()
    {
        string[] keys = ["evt-e", "EVT-E", "evt-e ", " evt-e", "evt-\u00e9", "evt-e\u0301", "evt-\U0001F600", new string('k', 2_000)];
        foreach (string key in keys)
        {
            Assert.False(await Store.ContainsAsync(key), $"'{key}' is marked before any mark of it");
            Assert.True(await Store.TryMarkAsync(key, LongTtl), $"'{key}' is taken as a key marked before");
        }
        foreach (string key in keys)
        {
            Assert.True(await Store.ContainsAsync(key), $"'{key}' is not seen as marked");
            Assert.False(await Store.TryMarkAsync(key, LongTtl), $"'{key}' is marked twice");
        }
    }

    [DedupeContractFact]
    public async Task A_mark_holds_until_its_time_to_live_has_passed_then_the_key_can_be_marked_again()
    {
        TimedMark first = await MarkAsync("k", ShortTtl);

        int refusedWithinTtl = await MarkAgainOnceExpiredAsync(first, ShortTtl);

        Assert.True(refusedWithinTtl > 0, $"no mark attempt finished within the {ShortTtl.TotalMilliseconds} ms time to live: the store answers too slowly for this test");
        Assert.False(await Store.TryMarkAsync("k", LongTtl));
        Assert.True(await Store.ContainsAsync("k"));
    }

    [DedupeContractFact]
    public async Task Contains_sees_a_live_mark_and_neither_an_absent_nor_an_expired_one()
    {
        Assert.False(await Store.ContainsAsync("k"));
        Assert.False(await Store.ContainsAsync("k"));
        // Asking did not mark.
        TimedMark first = await MarkAsync("k", ShortTtl);

        Assert.True(await Store.ContainsAsync("k"));
        Assert.True(first.Elapsed < first.Started + ShortTtl, "the store answered too slowly to see its mark live");
        Assert.False(await Store.ContainsAsync("other"));

        while (await Store.ContainsAsync("k"))
        {
            Assert.True(first.Elapsed < first.Ended + ShortTtl + ExpiryGrace,
                $"still contained {(first.Elapsed - first.Ended).TotalMilliseconds:F0} ms after it was marked for {ShortTtl.TotalMilliseconds} ms");
            await Task.Delay(PollInterval);
        }
        Assert.True(first.Elapsed >= first.Started + ShortTtl,
            $"gone {(first.Elapsed - first.Started).TotalMilliseconds:F1} ms after it was marked for {ShortTtl.TotalMilliseconds} ms");

        Assert.False(await Store.ContainsAsync("k"));
        Assert.True(await Store.TryMarkAsync("k", LongTtl));
        Assert.True(await Store.ContainsAsync("k"));
    }

    [DedupeContractFact]
    public async Task A_failed_second_mark_does_not_extend_the_first()
    {
        TimedMark first = await MarkAsync("k", ShortTtl);

        Assert.False(await Store.TryMarkAsync("k", LongTtl));
        Assert.True(first.Elapsed < first.Started + ShortTtl, "the store answered too slowly to refuse within the first mark's time to live");

        // Had the refused mark extended the first to its own time to live, this would time out.
        await MarkAgainOnceExpiredAsync(first, ShortTtl);
    }

    [DedupeContractFact]
    public async Task Concurrent_marks_of_one_key_yield_exactly_one_winner()
    {
        const int contenders = 16;
        var store = Store; // made here: Store is made lazily, and contenders racing to make it would each get a store of their own
        for (int round = 0; round < 5; round++)
        {
            string key = "race-" + round;
            var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var attempts = new Task<bool>[contenders];
            for (int i = 0; i < contenders; i++)
            {
                attempts[i] = Task.Run(async () =>
                {
                    await start.Task;
                    return await store.TryMarkAsync(key, LongTtl);
                });
            }

            start.SetResult();
            bool[] results = await Task.WhenAll(attempts).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Single(results, won => won);
            Assert.True(await Store.ContainsAsync(key));
        }
    }

    [DedupeContractFact]
    public async Task A_time_to_live_under_a_millisecond_is_accepted_and_runs_out()
    {
        TimedMark first = await MarkAsync("k", TimeSpan.FromTicks(1));

        await MarkAgainOnceExpiredAsync(first, LongTtl);
        Assert.True(await Store.ContainsAsync("k"));
    }

    [DedupeContractFact]
    public async Task The_longest_time_to_live_is_accepted_and_holds()
    {
        Assert.True(await Store.TryMarkAsync("k", TimeSpan.MaxValue));
        Assert.False(await Store.TryMarkAsync("k", ShortTtl));
        Assert.True(await Store.ContainsAsync("k"));
    }

    [DedupeContractFact]
    public async Task A_call_with_a_cancelled_token_throws_and_marks_nothing()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Store.TryMarkAsync("k", LongTtl, cancelled.Token).AsTask());
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Store.ContainsAsync("k", cancelled.Token).AsTask());

        Assert.False(await Store.ContainsAsync("k"));
        Assert.True(await Store.TryMarkAsync("k", LongTtl));
    }

    [DedupeContractFact]
    public async Task A_null_or_empty_key_is_refused_naming_it()
    {
        var nullMark = await Assert.ThrowsAsync<ArgumentNullException>(() => Store.TryMarkAsync(null!, LongTtl).AsTask());
        var emptyMark = await Assert.ThrowsAsync<ArgumentException>(() => Store.TryMarkAsync("", LongTtl).AsTask());
        var nullContains = await Assert.ThrowsAsync<ArgumentNullException>(() => Store.ContainsAsync(null!).AsTask());
        var emptyContains = await Assert.ThrowsAsync<ArgumentException>(() => Store.ContainsAsync("").AsTask());

        Assert.All(new ArgumentException[] { nullMark, emptyMark, nullContains, emptyContains }, e => Assert.Equal("key", e.ParamName));
    }

    [DedupeContractFact]
    public async Task A_time_to_live_that_is_not_positive_is_refused_naming_it_and_marks_nothing()
    {
        foreach (TimeSpan ttl in new[] { TimeSpan.Zero, TimeSpan.FromTicks(-1), TimeSpan.FromSeconds(-5), TimeSpan.MinValue })
        {
            var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Store.TryMarkAsync("k", ttl).AsTask());
            Assert.Equal("ttl", e.ParamName);
        }

        Assert.False(await Store.ContainsAsync("k"));
        Assert.True(await Store.TryMarkAsync("k", LongTtl));
    }

    /// <summary>A successful mark and when it was made: somewhere between <see cref="Started"/> and
    /// <see cref="Ended"/> on <see cref="Clock"/>.</summary>
    private sealed record TimedMark(string Key, TimeSpan Ttl, Stopwatch Clock, TimeSpan Started, TimeSpan Ended)
    {
        public TimeSpan Elapsed => Clock.Elapsed;
    }

    /// <summary>Marks <paramref name="key"/>, which must not be marked yet, timing the call. The store
    /// is used once before, so that its first call's work (a connect, a table to create) is not timed.</summary>
    private async Task<TimedMark> MarkAsync(string key, TimeSpan ttl)
    {
        Assert.False(await Store.ContainsAsync("contract/warm-up"));
        var clock = Stopwatch.StartNew();
        TimeSpan started = clock.Elapsed;
        Assert.True(await Store.TryMarkAsync(key, ttl), $"'{key}' could not be marked");
        return new TimedMark(key, ttl, clock, started, clock.Elapsed);
    }

    /// <summary>Tries to mark the key of <paramref name="first"/> again (for <paramref name="ttl"/>)
    /// until that succeeds, checking that none succeeded before the first mark's time to live had
    /// passed since it began, and that one did within <see cref="ExpiryGrace"/> of its end. Returns
    /// the attempts refused that finished within the first mark's time to live.</summary>
    private async Task<int> MarkAgainOnceExpiredAsync(TimedMark first, TimeSpan ttl)
    {
        int refusedWithinTtl = 0;
        while (true)
        {
            TimeSpan started = first.Elapsed;
            bool marked = await Store.TryMarkAsync(first.Key, ttl);
            TimeSpan ended = first.Elapsed;
            if (marked)
            {
                Assert.True(ended >= first.Started + first.Ttl,
                    $"marked again {(ended - first.Started).TotalMilliseconds:F1} ms after the first mark began, within its {first.Ttl.TotalMilliseconds} ms time to live");
                return refusedWithinTtl;
            }
            if (ended < first.Started + first.Ttl) refusedWithinTtl++;
            Assert.True(started < first.Ended + first.Ttl + ExpiryGrace,
                $"still marked {(started - first.Ended).TotalMilliseconds:F0} ms after a mark for {first.Ttl.TotalMilliseconds} ms");
            await Task.Delay(PollInterval);
        }
    }
}

/// <summary>A fact of <see cref="DedupeStoreContract"/>: run, unless the test assembly carries a
/// <see cref="DedupeContractSkipAttribute"/> that gives a reason to skip.</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
internal sealed class DedupeContractFactAttribute : FactAttribute
{
    public DedupeContractFactAttribute() =>
        Skip = typeof(DedupeContractFactAttribute).Assembly.GetCustomAttribute<DedupeContractSkipAttribute>()?.Reason;
}

/// <summary>Derive from this in a test assembly whose store needs a service (such as Redis), and apply
/// the derived attribute to that assembly, to skip the contract there when the service is missing.
/// The contract's facts are declared once, on the abstract class, so this is the one place that
/// knows which store they run against.</summary>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = false)]
internal abstract class DedupeContractSkipAttribute : Attribute
{
    /// <summary>Why the contract cannot run here, or null to run it.</summary>
    public abstract string? Reason { get; }
}
