using Confluent.Kafka;
using Herald.Transport;
using HeraldPartition = Herald.Transport.TopicPartition;
using KafkaPartition = Confluent.Kafka.TopicPartition;

namespace Herald.Kafka;

/// <summary>The group's rebalance callbacks: partitions given (their positions, their
/// followers, the pipeline told) and taken away (finished or abandoned, then handed over).</summary>
internal sealed partial class KafkaConsumer
{
    /// <summary>The group gave this lane partitions. Nothing may escape a rebalance callback
    /// (Confluent.Kafka would then unassign the lane's every partition behind Herald's back), so
    /// the pipeline's setup of the new partitions is tried until it succeeds or the member stops,
    /// and a failure to read positions falls back to the group's reset.</summary>
    private List<TopicPartitionOffset> Assigned(IConsumer<byte[]?, byte[]?> lane, List<KafkaPartition> partitions)
    {
        var given = new List<HeraldPartition>();
        var positions = Positions(lane, partitions, given);
        if (_follower is not null)
        {
            var followers = FollowersOf(partitions);
            if (followers.Count > 0)
            {
                try
                {
                    _follower.IncrementalAssign(Positions(_follower, followers, given));
                }
                catch (KafkaException e)
                {
                    _pollError = new HeraldException($"Kafka consumer of group '{_spec.Group}' could not take the retry partitions of its new partitions: {e.Error.Code} ({e.Error.Reason})", e);
                }
            }
        }
        _assignment = [.. _assignment.Union(given)];
        if (_spec.OnAssigned is { } onAssigned && (given.Count > 0 || !_joined))
        {
            var delay = TimeSpan.FromMilliseconds(100);
            while (!_closing && !_stop.IsCancellationRequested)
            {
                try
                {
                    onAssigned(given, _stop.Token).AsTask().GetAwaiter().GetResult();
                    _pollError = null; // what failed before this has passed
                    break;
                }
                catch (OperationCanceledException)
                {
                    break; // the subscription is stopping
                }
                catch (Exception e)
                {
                    // Reading the new partitions' state failed (a retry or dead-letter topic
                    // away): their records may not be handled before it is known. The next fetch
                    // reports the error; this waits and tries again.
                    _pollError = e;
                    _stop.Token.WaitHandle.WaitOne(delay);
                    delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
                }
            }
        }
        _joined = true;
        return positions;
    }

    /// <summary>Where to start reading each partition: its committed offset, else as the group
    /// starts (retry topics from their first record, whatever the group's reset says). "Latest" is
    /// the end of the partition now, before the pipeline hears of the partition, so that nothing
    /// published after the member is ready is skipped.</summary>
    private List<TopicPartitionOffset> Positions(IConsumer<byte[]?, byte[]?> consumer, List<KafkaPartition> partitions, List<HeraldPartition> given)
    {
        var positions = new List<TopicPartitionOffset>(partitions.Count);
        if (partitions.Count == 0) return positions;
        List<TopicPartitionOffset> committed;
        try
        {
            committed = consumer.Committed(partitions, _transport.Options.RequestTimeout);
        }
        catch (KafkaException)
        {
            // Unknown now (the coordinator away): left to librdkafka, which fetches the committed
            // offsets itself when it starts the partitions, and applies the reset without one.
            foreach (var tp in partitions)
            {
                var h = KafkaTransport.ToHerald(tp);
                given.Add(h);
                lock (_lost) _lost.Remove(h);
                _committed.TryRemove(h, out _);
                positions.Add(new TopicPartitionOffset(tp, Offset.Unset));
            }
            return positions;
        }
        foreach (var c in committed)
        {
            var tp = KafkaTransport.ToHerald(c.TopicPartition);
            given.Add(tp);
            lock (_lost) _lost.Remove(tp);
            if (c.Offset.Value >= 0)
            {
                _committed[tp] = c.Offset.Value;
                positions.Add(new TopicPartitionOffset(c.TopicPartition, c.Offset));
                continue;
            }
            _committed.TryRemove(tp, out _);
            var earliest = _spec.AlwaysFromEarliest?.Contains(tp.Topic) == true || _spec.StartFrom != StartFrom.Latest;
            var start = earliest ? Offset.Beginning : Offset.End;
            if (!earliest)
            {
                try
                {
                    start = consumer.QueryWatermarkOffsets(c.TopicPartition, _transport.Options.RequestTimeout).High;
                }
                catch (KafkaException)
                {
                    // Left to librdkafka: the end when it starts the partition.
                }
            }
            positions.Add(new TopicPartitionOffset(c.TopicPartition, start));
        }
        return positions;
    }

    private void Revoked(List<TopicPartitionOffset> partitions, bool lost)
    {
        var followers = FollowersOf(partitions.ConvertAll(p => p.TopicPartition));
        var taken = partitions.ConvertAll(p => KafkaTransport.ToHerald(p.TopicPartition));
        taken.AddRange(followers.Select(KafkaTransport.ToHerald));
        if (lost)
        {
            // Another member may own them already: finish nothing more of them, commit nothing.
            lock (_lost) foreach (var tp in taken) _lost.Add(tp);
        }
        try
        {
            // Stopping: the subscription has already drained and committed what finished.
            if (!_closing && _spec.OnRevoking is { } onRevoking)
                onRevoking(taken, _stop.Token).AsTask().GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            // The subscription is stopping (its drain goes on and commits what finishes) or its
            // revoke failed: the partitions go all the same. Nothing may escape a rebalance
            // callback: Confluent.Kafka would unassign the lane's every partition.
            if (!_stop.IsCancellationRequested && e is not OperationCanceledException) _pollError = e;
        }
        finally
        {
            // A pause outlives an unassignment in librdkafka: resume what was paused, so that the
            // partitions start unpaused when they come back (the pipeline counts on it).
            var gone = taken.ToHashSet();
            lock (_flow)
            {
                // No longer owned before they are resumed: a pause from the pipeline now would
                // outlive the unassignment.
                _assignment = [.. _assignment.Except(gone)];
                var paused = gone.Where(tp => _pausedByPipeline.Contains(tp) || _pausedForStash.Contains(tp)).ToList();
                Flow(paused, pause: false);
                _pausedByPipeline.ExceptWith(gone);
                _pausedForStash.ExceptWith(gone);
            }
            if (followers.Count > 0)
            {
                try
                {
                    _follower!.IncrementalUnassign(followers);
                }
                catch (KafkaException)
                {
                    // Not assigned (a follower's assignment failed with its leader's): nothing to take back.
                }
            }
            foreach (var tp in taken) _committed.TryRemove(tp, out _);
            // Held records of partitions now gone: the next owner reads them again.
            if (_stash.Count > 0)
            {
                var kept = _stash.Where(r => !gone.Contains(new HeraldPartition(r.Topic, r.Partition.Value))).ToList();
                _stash.Clear();
                foreach (var r in kept) _stash.Enqueue(r);
            }
        }
    }

    /// <summary>The follower partitions that go with these leader partitions.</summary>
    private List<KafkaPartition> FollowersOf(List<KafkaPartition> partitions)
    {
        var followers = new List<KafkaPartition>();
        foreach (var tp in partitions)
            if (_followersOf.TryGetValue(tp.Topic, out var topics))
                foreach (var topic in topics) followers.Add(new KafkaPartition(topic, tp.Partition));
        return followers;
    }
}
