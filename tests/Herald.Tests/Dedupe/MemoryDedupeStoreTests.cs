using Herald.Dedupe;

namespace Herald.Tests.Dedupe;

public sealed class MemoryDedupeStoreTests
{
    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task The_first_mark_of_a_key_wins_and_a_second_does_not()
    {
        var store = new MemoryDedupeStore(100, new ManualClock());

        Assert.True(await store.TryMarkAsync("a", Ttl));
        Assert.False(await store.TryMarkAsync("a", Ttl));
        Assert.True(await store.TryMarkAsync("b", Ttl));
        Assert.False(await store.TryMarkAsync("b", Ttl));
    }

    [Fact]
    public async Task A_mark_holds_until_its_time_to_live_has_passed_then_the_key_can_be_marked_again()
    {
        var clock = new ManualClock();
        var store = new MemoryDedupeStore(100, clock);
        Assert.True(await store.TryMarkAsync("a", Ttl));

        clock.Advance(Ttl - TimeSpan.FromTicks(1));
        Assert.False(await store.TryMarkAsync("a", Ttl));

        clock.Advance(TimeSpan.FromTicks(1));
        Assert.True(await store.TryMarkAsync("a", Ttl));
        Assert.False(await store.TryMarkAsync("a", Ttl));
    }

    [Fact]
    public async Task A_failed_second_mark_does_not_extend_the_first()
    {
        var clock = new ManualClock();
        var store = new MemoryDedupeStore(100, clock);
        Assert.True(await store.TryMarkAsync("a", Ttl));

        clock.Advance(Ttl / 2);
        Assert.False(await store.TryMarkAsync("a", TimeSpan.FromHours(1)));

        clock.Advance(Ttl / 2);
        Assert.True(await store.TryMarkAsync("a", Ttl));
    }

    [Fact]
    public async Task Contains_sees_a_live_mark_and_not_an_expired_or_absent_one()
    {
        var clock = new ManualClock();
        var store = new MemoryDedupeStore(100, clock);
        Assert.True(await store.TryMarkAsync("a", Ttl));
        Assert.True(await store.ContainsAsync("a"));
        Assert.False(await store.ContainsAsync("never-marked"));
        clock.Advance(Ttl);
        Assert.False(await store.ContainsAsync("a"));
        Assert.True(await store.TryMarkAsync("a", Ttl));
        Assert.True(await store.ContainsAsync("a"));
    }

    [Fact]
    public async Task The_store_never_holds_more_marks_than_its_capacity()
    {
        const int capacity = 100;
        var clock = new ManualClock();
        var store = new MemoryDedupeStore(capacity, clock);

        for (int i = 0; i < 10_000; i++)
        {
            clock.Advance(TimeSpan.FromTicks(1)); // each mark expires after the one before it
            Assert.True(await store.TryMarkAsync("k" + i, TimeSpan.FromHours(1)));
            Assert.True(store.Count <= capacity, $"{store.Count} marks held after {i + 1} marks, capacity {capacity}");
        }

        Assert.Equal(capacity, store.Count);
        // The last marks all expire last, so they are the ones kept.
        for (int i = 10_000 - capacity; i < 10_000; i++)
            Assert.False(await store.TryMarkAsync("k" + i, TimeSpan.FromHours(1)));
    }

    [Fact]
    public async Task Superseded_queue_entries_stay_bounded_when_keys_are_renewed_after_expiring()
    {
        var clock = new ManualClock();
        var store = new MemoryDedupeStore(10, clock);
        Assert.True(await store.TryMarkAsync("long-lived", TimeSpan.FromDays(1)));

        for (int i = 0; i < 10_000; i++)
        {
            // Renewed after expiry: the expired entry is superseded but stays behind the long-lived one.
            Assert.True(await store.TryMarkAsync("renewed", TimeSpan.FromTicks(1)));
            clock.Advance(TimeSpan.FromTicks(1));
            Assert.True(store.QueuedCount <= 2 * store.Count + MemoryDedupeStore.StaleSlack,
                $"{store.QueuedCount} queue entries for {store.Count} marks after {i + 1} rounds");
        }

        Assert.False(await store.TryMarkAsync("long-lived", TimeSpan.FromDays(1)));
    }

    [Fact]
    public async Task When_full_the_store_evicts_an_expired_mark_before_any_live_one()
    {
        var clock = new ManualClock();
        var store = new MemoryDedupeStore(3, clock);
        // Marked first and last to expire, so neither insertion order nor recency picks the expired one.
        Assert.True(await store.TryMarkAsync("oldest", TimeSpan.FromSeconds(30)));
        Assert.True(await store.TryMarkAsync("middle", TimeSpan.FromSeconds(20)));
        Assert.True(await store.TryMarkAsync("newest-expires-first", TimeSpan.FromSeconds(1)));

        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.True(await store.TryMarkAsync("new", TimeSpan.FromSeconds(30)));

        Assert.Equal(3, store.Count);
        Assert.False(await store.TryMarkAsync("oldest", Ttl));
        Assert.False(await store.TryMarkAsync("middle", Ttl));
        Assert.False(await store.TryMarkAsync("new", Ttl));
    }

    [Fact]
    public async Task When_full_with_no_expired_mark_the_store_evicts_the_one_that_expires_soonest()
    {
        var clock = new ManualClock();
        var store = new MemoryDedupeStore(3, clock);
        Assert.True(await store.TryMarkAsync("first-marked", TimeSpan.FromSeconds(30)));
        Assert.True(await store.TryMarkAsync("expires-soonest", TimeSpan.FromSeconds(5)));
        Assert.True(await store.TryMarkAsync("last-marked", TimeSpan.FromSeconds(20)));

        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await store.TryMarkAsync("new", TimeSpan.FromSeconds(60)));

        Assert.Equal(3, store.Count);
        Assert.False(await store.TryMarkAsync("first-marked", Ttl));
        Assert.False(await store.TryMarkAsync("last-marked", Ttl));
        Assert.False(await store.TryMarkAsync("new", Ttl));
        // Forgotten under pressure: a duplicate of it gets through. This is the cheap mode's trade.
        Assert.True(await store.TryMarkAsync("expires-soonest", Ttl));
    }

    [Fact]
    public async Task Concurrent_marks_of_one_key_yield_exactly_one_winner()
    {
        var store = new MemoryDedupeStore(1_000);
        const int contenders = 32;

        for (int round = 0; round < 50; round++)
        {
            string key = "key-" + round;
            var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var attempts = new Task<bool>[contenders];
            for (int i = 0; i < contenders; i++)
            {
                attempts[i] = Task.Run(async () =>
                {
                    await start.Task;
                    return await store.TryMarkAsync(key, TimeSpan.FromMinutes(5));
                });
            }

            start.SetResult();
            bool[] results = await Task.WhenAll(attempts).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Single(results, won => won);
        }
    }

    [Fact]
    public async Task Concurrent_marks_of_many_keys_keep_the_capacity_bound()
    {
        const int capacity = 50;
        var store = new MemoryDedupeStore(capacity);
        var workers = new Task[8];
        for (int w = 0; w < workers.Length; w++)
        {
            int worker = w;
            workers[w] = Task.Run(async () =>
            {
                for (int i = 0; i < 2_000; i++)
                    Assert.True(await store.TryMarkAsync($"w{worker}-{i}", TimeSpan.FromMinutes(5)));
            });
        }

        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(capacity, store.Count);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(MemoryDedupeStore.MaxCapacity + 1)]
    public void A_capacity_out_of_range_is_refused_naming_it(int capacity)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new MemoryDedupeStore(capacity));
        Assert.Equal("capacity", e.ParamName);
    }

    [Fact]
    public async Task The_largest_capacity_is_accepted_without_reserving_it()
    {
        var store = new MemoryDedupeStore(MemoryDedupeStore.MaxCapacity);
        Assert.True(await store.TryMarkAsync("a", Ttl));
        Assert.Equal(1, store.Count);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public async Task A_time_to_live_that_is_not_positive_is_refused_naming_it(long ticks)
    {
        var store = new MemoryDedupeStore(10);
        var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => store.TryMarkAsync("a", TimeSpan.FromTicks(ticks)).AsTask());
        Assert.Equal("ttl", e.ParamName);
        Assert.Equal(0, store.Count);
    }

    [Fact]
    public async Task A_null_or_empty_key_is_refused_naming_it()
    {
        var store = new MemoryDedupeStore(10);

        var nullMark = await Assert.ThrowsAsync<ArgumentNullException>(() => store.TryMarkAsync(null!, Ttl).AsTask());
        var emptyMark = await Assert.ThrowsAsync<ArgumentException>(() => store.TryMarkAsync("", Ttl).AsTask());
        var nullContains = await Assert.ThrowsAsync<ArgumentNullException>(() => store.ContainsAsync(null!).AsTask());
        var emptyContains = await Assert.ThrowsAsync<ArgumentException>(() => store.ContainsAsync("").AsTask());

        Assert.All(new[] { nullMark, emptyMark, nullContains, emptyContains }, e => Assert.Equal("key", e.ParamName));
        Assert.Equal(0, store.Count);
    }

    /// <summary>A clock the test moves by hand; timestamps count its ticks, so time to live runs on it.</summary>
    private sealed class ManualClock : TimeProvider
    {
        private long _utcTicks = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero).UtcTicks;

        public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _utcTicks), TimeSpan.Zero);

        public override long GetTimestamp() => Interlocked.Read(ref _utcTicks);

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public void Advance(TimeSpan by) => Interlocked.Add(ref _utcTicks, by.Ticks);
    }
}
