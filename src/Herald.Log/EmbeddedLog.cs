using Herald.Log.Internal;
using Herald.Log.Offsets;

namespace Herald.Log;

/// <summary>Herald's embedded durable event log: a directory of topics, each with partitions of
/// segment files, plus the consumer-group offset store. One process opens a directory at a time
/// (a file lock says so). Zero setup: <c>EmbeddedLog.Open("data")</c>.</summary>
public sealed class EmbeddedLog : IAsyncDisposable, IDisposable
{
    private const string LockFileName = ".lock";
    private readonly LogFileSystem _fs;
    private readonly EmbeddedLogOptions _options;
    private readonly FileStream _lockFile;
    private readonly Lock _topicsLock = new();
    // Written under _topicsLock (topics are created, never removed); read without a lock, since every
    // append through a transport looks its topic up (pipeline benchmark).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, LogTopic> _topics = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _maintenanceLoop;
    private bool _disposed;

    private EmbeddedLog(string directory, EmbeddedLogOptions options, LogFileSystem fs)
    {
        Directory = Path.GetFullPath(directory);
        _options = options;
        _fs = fs;
        System.IO.Directory.CreateDirectory(Directory);
        try
        {
            // FileShare.None takes an exclusive advisory lock (flock) on Unix: a second process fails here.
            _lockFile = new FileStream(Path.Combine(Directory, LockFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new LogLockedException(Directory, e);
        }
        try
        {
            var topicsDir = Path.Combine(Directory, "topics");
            System.IO.Directory.CreateDirectory(topicsDir);
            Offsets = new ConsumerOffsetStore(fs, Path.Combine(Directory, "offsets"));
            fs.SyncDirectory(Directory); // the topics/ and offsets/ entries themselves are durable
            foreach (var dir in System.IO.Directory.GetDirectories(topicsDir))
            {
                var manifest = Path.Combine(dir, TopicManifest.FileName);
                if (!File.Exists(manifest)) continue; // a topic whose creation did not finish
                var name = Path.GetFileName(dir);
                var topicOptions = TopicManifest.Deserialize(manifest, fs.ReadAll(manifest));
                topicOptions.Validate(name);
                _topics[name] = OpenTopic(name, topicOptions);
            }
        }
        catch
        {
            _lockFile.Dispose();
            throw;
        }
        _maintenanceLoop = options.MaintenanceInterval is { } interval ? MaintainAsync(interval, _stopping.Token) : Task.CompletedTask;
    }

    /// <summary>The log's directory.</summary>
    public string Directory { get; }

    public ConsumerOffsetStore Offsets { get; }

    /// <summary>Consumer-group membership for the consumers in this process that share this log.</summary>
    public Groups.ConsumerGroups Groups { get; } = new();

    /// <summary>A copy of the options a topic gets when it is created without its own.</summary>
    public TopicOptions DefaultTopicOptions() => _options.DefaultTopic.Clone();

    /// <summary>Opens (creating if needed) the log in <paramref name="directory"/>, recovering every
    /// partition: torn tails truncated, stale indexes rebuilt, corruption reported.</summary>
    public static EmbeddedLog Open(string directory, EmbeddedLogOptions? options = null) =>
        Open(directory, options, PosixFileSystem.Instance);

    internal static EmbeddedLog Open(string directory, EmbeddedLogOptions? options, LogFileSystem fs)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        options ??= new EmbeddedLogOptions();
        options.Validate();
        return new EmbeddedLog(directory, options, fs);
    }

    public IReadOnlyList<LogTopic> Topics
    {
        get { lock (_topicsLock) return [.. _topics.Values]; }
    }

    public bool TryGetTopic(string name, out LogTopic topic)
    {
        return _topics.TryGetValue(name, out topic!);
    }

    /// <summary>Returns the topic, creating it with <paramref name="options"/> (or the default
    /// topic options) if it does not exist. An existing topic keeps the options it was created with.</summary>
    public LogTopic GetOrCreateTopic(string name, TopicOptions? options = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ValidateTopicName(name);
        lock (_topicsLock)
        {
            if (_topics.TryGetValue(name, out var existing)) return existing;
            var topicOptions = (options ?? _options.DefaultTopic).Clone();
            topicOptions.Validate(name);
            var dir = TopicDirectory(name);
            System.IO.Directory.CreateDirectory(dir);
            _fs.SyncDirectory(Path.GetDirectoryName(dir)!);
            var topic = OpenTopic(name, topicOptions);
            // The manifest is written last: a crash before it leaves no half-made topic behind.
            _fs.WriteAtomically(Path.Combine(dir, TopicManifest.FileName), TopicManifest.Serialize(topicOptions));
            _topics[name] = topic;
            return topic;
        }
    }

    /// <summary>Creates a topic; throws if it already exists.</summary>
    public LogTopic CreateTopic(string name, TopicOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        lock (_topicsLock)
        {
            if (_topics.ContainsKey(name)) throw new ArgumentException($"topic '{name}' already exists", nameof(name));
            return GetOrCreateTopic(name, options);
        }
    }

    private LogTopic OpenTopic(string name, TopicOptions options)
    {
        var partitions = new LogPartition[options.Partitions];
        for (var p = 0; p < partitions.Length; p++)
        {
            var dir = Path.Combine(TopicDirectory(name), p.ToString(System.Globalization.CultureInfo.InvariantCulture));
            partitions[p] = new LogPartition(name, p, dir, options, _fs, _options);
        }
        return new LogTopic(name, options, partitions);
    }

    private string TopicDirectory(string name) => Path.Combine(Directory, "topics", name);

    /// <summary>Kafka's rule: 1 to 249 characters of [a-zA-Z0-9._-], and not "." or "..".</summary>
    public static void ValidateTopicName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length is 0 or > 249 || name is "." or "..")
            throw new ArgumentException($"topic name '{name}' must be 1 to 249 characters and not '.' or '..'", nameof(name));
        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
                throw new ArgumentException($"topic name '{name}' has '{c}': only ASCII letters, digits, '.', '_' and '-' are allowed", nameof(name));
        }
    }

    /// <summary>Runs retention and compaction on every partition now.</summary>
    public async Task<MaintenanceReport> RunMaintenanceAsync(CancellationToken cancellationToken = default)
    {
        var now = _options.TimeProvider.GetUtcNow();
        var deleted = 0;
        long compacted = 0;
        foreach (var topic in Topics)
        {
            foreach (var partition in topic.Partitions)
            {
                var (d, c) = await partition.RunMaintenanceAsync(now, cancellationToken).ConfigureAwait(false);
                deleted += d;
                compacted += c;
            }
        }
        return new MaintenanceReport(deleted, compacted);
    }

    private async Task MaintainAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(interval, _options.TimeProvider);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                try
                {
                    await RunMaintenanceAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // Corruption and I/O faults are reported by reads and appends of the partition
                    // concerned; maintenance keeps the last failure for inspection and tries again
                    // on its next tick.
                    LastMaintenanceError = e;
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>The last failure of a background maintenance pass, if any.</summary>
    public Exception? LastMaintenanceError { get; private set; }

    /// <summary>Finishes queued appends, stops maintenance, closes every file and releases the lock.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
            await _maintenanceLoop.ConfigureAwait(false);
        }
        finally
        {
            try
            {
                foreach (var topic in Topics)
                    foreach (var partition in topic.Partitions)
                        await partition.CloseAsync().ConfigureAwait(false);
            }
            finally
            {
                _lockFile.Dispose();
                _stopping.Dispose();
            }
        }
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}

/// <summary>What one maintenance pass did.</summary>
public sealed record MaintenanceReport(int SegmentsDeleted, long RecordsCompacted);
