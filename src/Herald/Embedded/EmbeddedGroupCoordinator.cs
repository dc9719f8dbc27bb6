using Herald.Transport;

namespace Herald.Embedded;

/// <summary>Consumer groups of one process over the embedded log. Members are assigned
/// partitions with Kafka's range strategy per topic (so co-partitioned topics, such as a topic
/// and its retry topic, give partition p to the same member), and a partition is owned by one
/// member at a time: a new owner waits until the old one has revoked it and committed.</summary>
internal sealed class EmbeddedGroupCoordinator
{
    private readonly object _lock = new();
    private readonly Dictionary<string, Group> _groups = new(StringComparer.Ordinal);
    private long _nextMemberId;

    internal sealed class Group
    {
        public readonly List<EmbeddedConsumer> Members = [];
        public readonly Dictionary<TopicPartition, EmbeddedConsumer> Owners = [];
        public int Generation;
        public TaskCompletionSource Changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public long Join(EmbeddedConsumer member)
    {
        lock (_lock)
        {
            if (!_groups.TryGetValue(member.Spec.Group, out var group)) _groups[member.Spec.Group] = group = new Group();
            group.Members.Add(member);
            Bump(group);
            return ++_nextMemberId;
        }
    }

    public void Leave(EmbeddedConsumer member)
    {
        lock (_lock)
        {
            if (!_groups.TryGetValue(member.Spec.Group, out var group)) return;
            group.Members.Remove(member);
            List<TopicPartition>? owned = null;
            foreach (var (tp, owner) in group.Owners)
                if (owner == member) (owned ??= []).Add(tp);
            if (owned is not null) foreach (var tp in owned) group.Owners.Remove(tp);
            Bump(group);
            if (group.Members.Count == 0) _groups.Remove(member.Spec.Group);
        }
    }

    /// <summary>The generation and the signal that fires when it changes or a partition is released.</summary>
    public (int Generation, Task Changed) State(EmbeddedConsumer member)
    {
        lock (_lock)
        {
            var group = _groups[member.Spec.Group];
            return (group.Generation, group.Changed.Task);
        }
    }

    /// <summary>The partitions <paramref name="member"/> should own in the current generation.</summary>
    public (int Generation, List<TopicPartition> Partitions) Assignment(EmbeddedConsumer member, Func<string, int> partitionCount)
    {
        lock (_lock)
        {
            var group = _groups[member.Spec.Group];
            var result = new List<TopicPartition>();
            foreach (var topic in member.Spec.Topics)
            {
                var index = -1;
                var count = 0;
                foreach (var m in group.Members)
                {
                    if (!m.Spec.Topics.Contains(topic)) continue;
                    if (m == member) index = count;
                    count++;
                }
                var partitions = partitionCount(topic);
                var per = partitions / count;
                var extra = partitions % count;
                var start = index * per + Math.Min(index, extra);
                var take = per + (index < extra ? 1 : 0);
                for (var p = start; p < start + take; p++) result.Add(new TopicPartition(topic, p));
            }
            return (group.Generation, result);
        }
    }

    /// <summary>Takes ownership of a partition when nobody holds it.</summary>
    public bool TryClaim(EmbeddedConsumer member, TopicPartition partition)
    {
        lock (_lock)
        {
            var group = _groups[member.Spec.Group];
            if (group.Owners.TryGetValue(partition, out var owner)) return owner == member;
            group.Owners[partition] = member;
            return true;
        }
    }

    public void Release(EmbeddedConsumer member, IEnumerable<TopicPartition> partitions)
    {
        lock (_lock)
        {
            if (!_groups.TryGetValue(member.Spec.Group, out var group)) return;
            foreach (var tp in partitions)
                if (group.Owners.TryGetValue(tp, out var owner) && owner == member) group.Owners.Remove(tp);
            Signal(group);
        }
    }

    private static void Bump(Group group)
    {
        group.Generation++;
        Signal(group);
    }

    private static void Signal(Group group)
    {
        var changed = group.Changed;
        group.Changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        changed.TrySetResult();
    }
}
