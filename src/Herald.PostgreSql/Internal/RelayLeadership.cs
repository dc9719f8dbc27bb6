using System.Data;
using System.Globalization;
using Npgsql;

namespace Herald.PostgreSql.Internal;

/// <summary>The relay's leadership on PostgreSQL: a session-level advisory lock, held by a
/// connection of its own (not pooled) for each relay that asked. The lock lives exactly as long as
/// that session: a crashed process's connection closes and the server releases the lock at once,
/// and the session is told to end itself (<c>idle_session_timeout</c>, PostgreSQL 14 and later)
/// when it stays idle for the lease, so that a hung leader or one cut off by the network loses the
/// leadership after the lease at the latest.
///
/// While a relay here holds the lock, the relay's reads and removals run on that same connection
/// (<see cref="EnterAsync"/>): a leader whose session has died can neither read nor remove
/// anything more, and its next TryLead tells it so. What remains is the publish in flight when the
/// session died: the new leader reads those events too and publishes them again (with the same
/// <c>ce_id</c>, which consumers' inboxes absorb). Nothing is lost: the relay removes events only
/// once the transport has them.</summary>
internal sealed class RelayLeadership(NpgsqlDataSource dedicated, long key) : IAsyncDisposable, IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1); // the sessions, and one command at a time on each
    private readonly Dictionary<string, Session> _sessions = new(StringComparer.Ordinal);
    private bool _disposed;

    private sealed class Session(NpgsqlConnection connection, bool holds)
    {
        public NpgsqlConnection Connection { get; } = connection;

        public bool Holds { get; set; } = holds;
    }

    public async ValueTask<bool> TryLeadAsync(string relayId, TimeSpan lease, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_sessions.TryGetValue(relayId, out var session))
            {
                if (Alive(session.Connection))
                {
                    try
                    {
                        if (session.Holds)
                        {
                            // The lock is the session's until it ends or unlocks (only ReleaseLead
                            // does): a round trip shows it is still there.
                            await using var ping = new NpgsqlCommand("SELECT 1", session.Connection);
                            await ping.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                            return true;
                        }
                        session.Holds = await TryLockAsync(session.Connection, null, cancellationToken).ConfigureAwait(false);
                        return session.Holds;
                    }
                    catch (NpgsqlException) when (!Alive(session.Connection))
                    {
                        // Found dead just now; handled below.
                    }
                }
                // The session is gone (terminated, ended idle, cut off): so is its lock, if it held
                // it. Try again on a new session; another relay may have the lock by now.
                _sessions.Remove(relayId);
                await session.Connection.DisposeAsync().ConfigureAwait(false);
            }
            var connection = await dedicated.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                var holds = await TryLockAsync(connection, lease, cancellationToken).ConfigureAwait(false);
                _sessions.Add(relayId, new Session(connection, holds));
                return holds;
            }
            catch
            {
                await connection.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Tries the lock on <paramref name="connection"/>; on a new session first sets it to
    /// end when idle for <paramref name="lease"/>.</summary>
    private async Task<bool> TryLockAsync(NpgsqlConnection connection, TimeSpan? lease, CancellationToken cancellationToken)
    {
        if (lease is { } l && connection.PostgreSqlVersion.Major >= 14)
        {
            await using var timeout = new NpgsqlCommand("SELECT set_config('idle_session_timeout', $1, false)", connection);
            timeout.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ((long)Math.Max(l.TotalMilliseconds, 1000)).ToString(CultureInfo.InvariantCulture) });
            await timeout.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        await using var command = new NpgsqlCommand("SELECT pg_try_advisory_lock($1)", connection);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = key });
        var taken = (bool)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        // The lock is one session's at a time: another relay here that believed it held it had a
        // session that died unnoticed.
        if (taken)
            foreach (var other in _sessions.Values)
                if (!ReferenceEquals(other.Connection, connection))
                    other.Holds = false;
        return taken;
    }

    public async ValueTask ReleaseLeadAsync(string relayId, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_sessions.Remove(relayId, out var session)) return;
            try
            {
                // Unlocked before closing, so that another relay can take over the moment this
                // returns (a closed session's locks go only once its backend has exited).
                if (session.Holds && Alive(session.Connection))
                {
                    await using var unlock = new NpgsqlCommand("SELECT pg_advisory_unlock($1)", session.Connection);
                    unlock.Parameters.Add(new NpgsqlParameter<long> { TypedValue = key });
                    await unlock.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
            }
            catch (NpgsqlException) when (!Alive(session.Connection))
            {
                // The session had ended already, and its lock with it: given up all the same.
            }
            finally
            {
                await session.Connection.DisposeAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The connection that holds the lock, for the relay's reads and removals, entered (call
    /// <see cref="Exit"/> after); or null, not entered, when no relay here leads.</summary>
    public async ValueTask<NpgsqlConnection?> EnterAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (!_disposed)
            foreach (var session in _sessions.Values)
                if (session.Holds)
                    return session.Connection;
        _gate.Release();
        return null;
    }

    /// <summary>Leaves the leader's connection; one that died while in use no longer holds the lock.</summary>
    public void Exit(NpgsqlConnection connection)
    {
        if (!Alive(connection))
            foreach (var session in _sessions.Values)
                if (ReferenceEquals(session.Connection, connection))
                    session.Holds = false;
        _gate.Release();
    }

    private static bool Alive(NpgsqlConnection connection) => connection.FullState == ConnectionState.Open;

    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var session in _sessions.Values) await session.Connection.DisposeAsync().ConfigureAwait(false);
            _sessions.Clear();
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose()
    {
        _gate.Wait();
        try
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var session in _sessions.Values) session.Connection.Dispose();
            _sessions.Clear();
        }
        finally
        {
            _gate.Release();
        }
    }
}
