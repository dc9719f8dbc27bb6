using System.Diagnostics;
using Herald.PostgreSql.Tests.Kit;
using Npgsql;
using static Herald.PostgreSql.Tests.Kit.PgScope;

namespace Herald.PostgreSql.Tests;

/// <summary>The relay's leadership: an advisory lock held by the leader's own session, which a
/// dead or stalled session loses at once or after the lease, and a clean stop hands over at once.</summary>
public class LeadershipTests
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);

    [PostgresFact]
    public async Task Of_two_relays_only_one_leads_and_the_other_takes_over_as_soon_as_it_releases()
    {
        await using var db = new PgScope("lead");
        var a = db.Store("a");
        var b = db.Store("b");

        Assert.True(await a.TryLeadAsync("relay-a", Lease));
        Assert.False(await b.TryLeadAsync("relay-b", Lease));
        Assert.True(await a.TryLeadAsync("relay-a", Lease)); // kept
        Assert.False(await b.TryLeadAsync("relay-b", Lease));
        var pid = Assert.Single(await db.PidsAsync(db.App("a") + "/lead"));

        await a.ReleaseLeadAsync("relay-a");
        // At once: nothing is left of a's lock when ReleaseLead returns.
        Assert.Equal(0, await db.ScalarAsync($"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = {pid}"));
        Assert.True(await b.TryLeadAsync("relay-b", Lease));
        await Eventually.WaitUntilAsync(async () => (await db.PidsAsync(db.App("a") + "/lead")).Count == 0, TimeSpan.FromSeconds(10), "a's session closing");
        Assert.False(await a.TryLeadAsync("relay-a", Lease));
        await a.ReleaseLeadAsync("never-led");                   // nothing to give up
    }

    [PostgresFact]
    public async Task Two_relays_on_one_store_do_not_both_lead()
    {
        await using var db = new PgScope("onestore");
        var store = db.Store();

        Assert.True(await store.TryLeadAsync("x", Lease));
        Assert.False(await store.TryLeadAsync("y", Lease));
        Assert.True(await store.TryLeadAsync("x", Lease));
        await store.ReleaseLeadAsync("x");
        Assert.True(await store.TryLeadAsync("y", Lease));
        Assert.False(await store.TryLeadAsync("x", Lease));
    }

    [PostgresFact]
    public async Task When_the_leaders_session_is_terminated_the_other_relay_takes_over_and_the_old_leader_can_read_nothing_on_it()
    {
        await using var db = new PgScope("takeover");
        var a = db.Store("a");
        var b = db.Store("b");
        await AddAsync(a, commit: true, [Message("t", "k", "0"), Message("t", "k", "1")]);
        Assert.True(await a.TryLeadAsync("relay-a", Lease));
        Assert.Equal(2, (await a.ReadDueAsync(10, 10_000)).Count); // on the leader's session
        Assert.False(await b.TryLeadAsync("relay-b", Lease));

        Assert.Equal(1, await db.TerminateAsync(db.App("a") + "/lead"));

        // The old leader's next read fails rather than reading without the lock...
        await Assert.ThrowsAnyAsync<NpgsqlException>(async () => await a.ReadDueAsync(10, 10_000));
        Assert.True(await b.TryLeadAsync("relay-b", Lease));  // ...the other takes over at once...
        Assert.False(await a.TryLeadAsync("relay-a", Lease)); // ...and the old one learns it has lost.
        Assert.Equal(2, (await b.ReadDueAsync(10, 10_000)).Count); // nothing was lost
        Assert.Equal(2, (await a.ReadDueAsync(10, 10_000)).Count); // a reads on its pool again
    }

    [PostgresFact]
    public async Task A_leader_whose_session_died_takes_the_lead_again_on_a_new_session_when_no_one_else_has()
    {
        await using var db = new PgScope("retake");
        var a = db.Store("a");
        Assert.True(await a.TryLeadAsync("relay-a", Lease));
        var before = Assert.Single(await db.PidsAsync(db.App("a") + "/lead"));

        await db.TerminatePidAsync(before);

        Assert.True(await a.TryLeadAsync("relay-a", Lease));
        var after = Assert.Single(await db.PidsAsync(db.App("a") + "/lead"));
        Assert.NotEqual(before, after);
        Assert.False(await db.Store("b").TryLeadAsync("relay-b", Lease));
        Assert.Equal(1, await db.ScalarAsync($"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = {after}"));
    }

    [PostgresFact]
    public async Task Releasing_a_lead_whose_session_has_already_died_gives_it_up_without_error()
    {
        await using var db = new PgScope("deadrelease");
        var a = db.Store("a");
        var b = db.Store("b");
        Assert.True(await a.TryLeadAsync("relay-a", Lease));
        Assert.Equal(1, await db.TerminateAsync(db.App("a") + "/lead"));

        await a.ReleaseLeadAsync("relay-a");

        Assert.True(await b.TryLeadAsync("relay-b", Lease));
        Assert.False(await a.TryLeadAsync("relay-a", Lease));
    }

    [PostgresFact]
    public async Task A_leader_that_stops_renewing_loses_the_lead_after_its_lease_and_not_before()
    {
        await using var db = new PgScope("lease");
        var a = db.Store("a");
        var b = db.Store("b");
        var lease = TimeSpan.FromSeconds(1);
        var since = Stopwatch.StartNew(); // before a's session can start its idle clock
        Assert.True(await a.TryLeadAsync("relay-a", lease));
        Assert.False(await b.TryLeadAsync("relay-b", Lease)); // b's own session keeps the long lease

        // a is alive but hung: its session ends itself after a lease of idleness.
        await Eventually.WaitUntilAsync(async () => await b.TryLeadAsync("relay-b", Lease), TimeSpan.FromSeconds(15), "b taking the lead");
        Assert.True(since.Elapsed >= lease, $"taken over after {since.Elapsed}");
        Assert.False(await a.TryLeadAsync("relay-a", lease));
    }

    [PostgresFact]
    public async Task Disposing_a_store_gives_its_lead_up()
    {
        await using var db = new PgScope("dispose");
        var a = new PostgresStore(db.ConnectionString("a"), db.Schema);
        var b = db.Store("b");
        Assert.True(await a.TryLeadAsync("relay-a", Lease));
        Assert.False(await b.TryLeadAsync("relay-b", Lease));

        await a.DisposeAsync();

        await Eventually.WaitUntilAsync(async () => await b.TryLeadAsync("relay-b", Lease), TimeSpan.FromSeconds(10), "b taking the lead");
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await a.TryLeadAsync("relay-a", Lease));
    }
}
