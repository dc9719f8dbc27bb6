using System.Collections.Concurrent;
using Herald.Log;
using Herald.Transport;

namespace Herald.Tests.Kit;

/// <summary>Forwards to a real transport and records what its consumers see: records fetched per
/// topic, offsets committed, and the partitions each member owns (from the assign and revoke
/// callbacks). One instance may serve several hosts; disposing it leaves the inner transport open
/// unless told otherwise.</summary>
public sealed class ObservingTransport(ITransport inner, bool disposeInner = false) : ITransport
{
    private readonly ConcurrentDictionary<string, long> _fetched = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _fetchedBytes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string, int, long), int> _sizes = new();
    private readonly ConcurrentDictionary<TopicPartition, long> _committed = new();
    private readonly List<Member> _members = [];

    public ITransport Inner => inner;

    /// <summary>When set, every consumer's first fetch (where it joins the group and gets its
    /// partitions) waits for this task: a consumer that is slow to start.</summary>
    public Task? FirstFetchGate { get; set; }

    /// <summary>Runs on the fetching thread after every fetch that returned records.</summary>
    public Action? AfterFetch { get; set; }

    public string Name => inner.Name;

    /// <summary>Records handed out by consumers' fetches, for one topic, since this transport was made.</summary>
    public long Fetched(string topic) => _fetched.GetValueOrDefault(topic);

    /// <summary>The sizes (<see cref="TransportRecord.Size"/>, Herald's prefetch estimate) of the
    /// records fetched from one topic.</summary>
    public long FetchedBytes(string topic) => _fetchedBytes.GetValueOrDefault(topic);

    /// <summary>When set, the size of every fetched record is kept until <see cref="TakeSize"/> asks for it.</summary>
    public bool TrackSizes { get; set; }

    /// <summary>The size of a fetched record, forgotten once taken; 0 when unknown.</summary>
    public int TakeSize(string topic, int partition, long offset) => _sizes.TryRemove((topic, partition, offset), out var size) ? size : 0;

    /// <summary>The last offset committed for a partition through this transport, if any.</summary>
    public long? Committed(string topic, int partition) => _committed.TryGetValue(new TopicPartition(topic, partition), out var o) ? o : null;

    public IReadOnlyList<Member> Members
    {
        get { lock (_members) return [.. _members]; }
    }

    public ValueTask EnsureTopicAsync(TopicSpec topic, CancellationToken cancellationToken = default) => inner.EnsureTopicAsync(topic, cancellationToken);

    public int GetPartitionCount(string topic) => inner.GetPartitionCount(topic);

    public ValueTask<long> ProduceAsync(string topic, int partition, OutgoingRecord record, CancellationToken cancellationToken = default) =>
        inner.ProduceAsync(topic, partition, record, cancellationToken);

    public PartitionOffsets GetOffsets(string topic, int partition) => inner.GetOffsets(topic, partition);

    public IAsyncEnumerable<TransportRecord> ReadAsync(string topic, int partition, long fromOffset, CancellationToken cancellationToken = default) =>
        inner.ReadAsync(topic, partition, fromOffset, cancellationToken);

    public ITransportConsumer CreateConsumer(ConsumerSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Member member;
        lock (_members)
        {
            member = new Member(spec.Group, _members.Count);
            _members.Add(member);
        }
        var observed = new ConsumerSpec
        {
            Group = spec.Group,
            Topics = spec.Topics,
            StartFrom = spec.StartFrom,
            AlwaysFromEarliest = spec.AlwaysFromEarliest,
            OnAssigned = async (partitions, ct) =>
            {
                if (spec.OnAssigned is { } onAssigned) await onAssigned(partitions, ct);
                foreach (var tp in partitions) member.Owned[tp] = 0;
            },
            OnRevoking = async (partitions, ct) =>
            {
                if (spec.OnRevoking is { } onRevoking) await onRevoking(partitions, ct);
                foreach (var tp in partitions) member.Owned.TryRemove(tp, out _);
            },
        };
        return new Consumer(this, inner.CreateConsumer(observed), member);
    }

    public ValueTask DisposeAsync() => disposeInner ? inner.DisposeAsync() : ValueTask.CompletedTask;

    /// <summary>One consumer group member created through this transport.</summary>
    public sealed class Member(string group, int index)
    {
        public string Group { get; } = group;

        public int Index { get; } = index;

        internal readonly ConcurrentDictionary<TopicPartition, byte> Owned = new();

        private volatile bool _left;

        /// <summary>The member's consumer was disposed (it left the group).</summary>
        public bool Left
        {
            get => _left;
            internal set => _left = value;
        }

        /// <summary>The partitions of <paramref name="topic"/> this member owns now.</summary>
        public int[] Partitions(string topic) => [.. Owned.Keys.Where(tp => tp.Topic == topic).Select(tp => tp.Partition).Order()];
    }

    private sealed class Consumer(ObservingTransport owner, ITransportConsumer inner, Member member) : ITransportConsumer
    {
        private bool _fetched;

        public IReadOnlyCollection<TopicPartition> Assignment => inner.Assignment;

        public async ValueTask FetchAsync(List<TransportRecord> into, int maxRecords, long maxBytes, CancellationToken cancellationToken)
        {
            if (!_fetched && owner.FirstFetchGate is { } gate) await gate.WaitAsync(cancellationToken);
            _fetched = true;
            var before = into.Count;
            await inner.FetchAsync(into, maxRecords, maxBytes, cancellationToken);
            if (into.Count == before) return;
            for (var i = before; i < into.Count; i++)
            {
                var r = into[i];
                var size = r.Size;
                if (owner.TrackSizes) owner._sizes[(r.Topic, r.Partition, r.Offset)] = size;
                owner._fetchedBytes.AddOrUpdate(r.Topic, size, (_, n) => n + size);
                owner._fetched.AddOrUpdate(r.Topic, 1, (_, n) => n + 1);
            }
            owner.AfterFetch?.Invoke();
        }

        public async ValueTask CommitAsync(IReadOnlyList<KeyValuePair<TopicPartition, long>> offsets, CancellationToken cancellationToken = default)
        {
            await inner.CommitAsync(offsets, cancellationToken);
            foreach (var (tp, offset) in offsets) owner._committed[tp] = offset;
        }

        public long? GetCommitted(TopicPartition partition) => inner.GetCommitted(partition);

        public void Pause(IEnumerable<TopicPartition> partitions) => inner.Pause(partitions);

        public void Resume(IEnumerable<TopicPartition> partitions) => inner.Resume(partitions);

        public async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync();
            member.Owned.Clear();
            member.Left = true;
        }
    }
}
