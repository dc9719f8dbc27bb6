namespace Herald.Log;

/// <summary>A topic of the embedded log: a name, its options, and its partitions.</summary>
public sealed class LogTopic
{
    private readonly LogPartition[] _partitions;

    internal LogTopic(string name, TopicOptions options, LogPartition[] partitions)
    {
        Name = name;
        Options = options;
        _partitions = partitions;
    }

    public string Name { get; }

    /// <summary>The options the topic was created with (a copy: changing it changes nothing).</summary>
    public TopicOptions Options { get; }

    public IReadOnlyList<LogPartition> Partitions => _partitions;

    public LogPartition this[int partition] =>
        partition >= 0 && partition < _partitions.Length
            ? _partitions[partition]
            : throw new ArgumentOutOfRangeException(nameof(partition), partition, $"topic '{Name}' has partitions 0..{_partitions.Length - 1}");

    public override string ToString() => Name;
}
