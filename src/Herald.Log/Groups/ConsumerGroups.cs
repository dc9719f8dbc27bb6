namespace Herald.Log.Groups;

/// <summary>Consumer-group membership for the consumers of this process that share one log.
/// Members are assigned partitions with Kafka's range strategy per topic (so co-partitioned
/// topics, such as a topic and its retry topic, give partition p to the same member), and a
/// partition is owned by one member at a time: a new owner waits until the old one has released
/// it (after committing). Offsets live in <see cref="EmbeddedLog.Offsets"/>.</summary>
public sealed class ConsumerGroups
{
    private readonly object _lock = new();
    private readonly Dictionary<string, Group> _groups = new(StringComparer.Ordinal);

    private sealed class Group
    {
        public readonly List<GroupMember> Members = [];
        public readonly Dictionary<(string, int), GroupMember> Owners = [];
        public int Generation;
        public TaskCompletionSource Changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Joins <paramref name="group"/> as a member consuming <paramref name="topics"/>;
    /// every member's assignment changes (a new generation).</summary>
    public GroupMember Join(string group, IReadOnlyList<string> topics)
    {
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(topics);
        lock (_lock)
        {
            if (!_groups.TryGetValue(group, out var g)) _groups[group] = g = new Group();
            var member = new GroupMember(this, group, [.. topics]);
            g.Members.Add(member);
            Bump(g);
            return member;
        }
    }

    /// <summary>The members of a group now, in join order.</summary>
    public int MemberCount(string group)
    {
        lock (_lock) return _groups.TryGetValue(group, out var g) ? g.Members.Count : 0;
    }

    internal void Leave(GroupMember member)
    {
        lock (_lock)
        {
            if (!_groups.TryGetValue(member.Group, out var g) || !g.Members.Remove(member)) return;
            List<(string, int)>? owned = null;
            foreach (var (tp, owner) in g.Owners)
                if (owner == member) (owned ??= []).Add(tp);
            if (owned is not null) foreach (var tp in owned) g.Owners.Remove(tp);
            Bump(g);
            if (g.Members.Count == 0) _groups.Remove(member.Group);
        }
    }

    internal (int Generation, Task Changed) State(GroupMember member)
    {
        lock (_lock)
        {
            var g = _groups[member.Group];
            return (g.Generation, g.Changed.Task);
        }
    }

    internal (int Generation, List<(string Topic, int Partition)> Partitions) Assignment(GroupMember member, Func<string, int> partitionCount)
    {
        lock (_lock)
        {
            var g = _groups[member.Group];
            var result = new List<(string, int)>();
            foreach (var topic in member.Topics)
            {
                var index = -1;
                var count = 0;
                foreach (var m in g.Members)
                {
                    if (!m.Topics.Contains(topic)) continue;
                    if (m == member) index = count;
                    count++;
                }
                var partitions = partitionCount(topic);
                var per = partitions / count;
                var extra = partitions % count;
                var start = index * per + Math.Min(index, extra);
                var take = per + (index < extra ? 1 : 0);
                for (var p = start; p < start + take; p++) result.Add((topic, p));
            }
            return (g.Generation, result);
        }
    }

    internal bool TryClaim(GroupMember member, string topic, int partition)
    {
        lock (_lock)
        {
            var g = _groups[member.Group];
            if (g.Owners.TryGetValue((topic, partition), out var owner)) return owner == member;
            g.Owners[(topic, partition)] = member;
            return true;
        }
    }

    internal void Release(GroupMember member, IEnumerable<(string Topic, int Partition)> partitions)
    {
        lock (_lock)
        {
            if (!_groups.TryGetValue(member.Group, out var g)) return;
            foreach (var tp in partitions)
                if (g.Owners.TryGetValue(tp, out var owner) && owner == member) g.Owners.Remove(tp);
            Signal(g);
        }
    }

    private static void Bump(Group g)
    {
        g.Generation++;
        Signal(g);
    }

    private static void Signal(Group g)
    {
        var changed = g.Changed;
        g.Changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        changed.TrySetResult();
    }
}

/// <summary>One member of a consumer group; disposing it leaves the group.</summary>
public sealed class GroupMember : IDisposable
{
    private readonly ConsumerGroups _groups;

    internal GroupMember(ConsumerGroups groups, string group, string[] topics)
    {
        _groups = groups;
        Group = group;
        Topics = topics;
    }

    public string Group { get; }

    public IReadOnlyList<string> Topics { get; }

    /// <summary>The group's generation, and a task that completes when it changes or a partition is released.</summary>
    public (int Generation, Task Changed) State => _groups.State(this);

    /// <summary>The partitions this member should own in the current generation (range strategy per topic).</summary>
    public (int Generation, List<(string Topic, int Partition)> Partitions) Assignment(Func<string, int> partitionCount) =>
        _groups.Assignment(this, partitionCount);

    /// <summary>Takes ownership of a partition; false while another member still holds it.</summary>
    public bool TryClaim(string topic, int partition) => _groups.TryClaim(this, topic, partition);

    /// <summary>Gives partitions up (after committing them), waking members waiting for them.</summary>
    public void Release(IEnumerable<(string Topic, int Partition)> partitions) => _groups.Release(this, partitions);

    public void Dispose() => _groups.Leave(this);
}
