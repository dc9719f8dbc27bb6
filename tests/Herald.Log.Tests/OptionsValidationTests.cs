namespace Herald.Log.Tests;

public class OptionsValidationTests
{
    public static TheoryData<string, Action<TopicOptions>> InvalidTopicOptions => new()
    {
        { nameof(TopicOptions.Partitions), o => o.Partitions = 0 },
        { nameof(TopicOptions.Durability), o => o.Durability = (DurabilityMode)7 },
        { nameof(TopicOptions.FlushInterval), o => o.FlushInterval = TimeSpan.Zero },
        { nameof(TopicOptions.FlushBytes), o => o.FlushBytes = 0 },
        { nameof(TopicOptions.MaxBatchBytes), o => o.MaxBatchBytes = 100 },
        { nameof(TopicOptions.SegmentBytes), o => o.SegmentBytes = o.MaxBatchBytes - 1 },
        { nameof(TopicOptions.SegmentAge), o => o.SegmentAge = TimeSpan.FromSeconds(-1) },
        { nameof(TopicOptions.IndexIntervalBytes), o => o.IndexIntervalBytes = 63 },
        { nameof(TopicOptions.MaxPendingBytes), o => o.MaxPendingBytes = o.MaxBatchBytes - 1 },
        { nameof(TopicOptions.Cleanup), o => o.Cleanup = (CleanupPolicy)9 },
        { nameof(TopicOptions.RetentionBytes), o => o.RetentionBytes = -1 },
        { nameof(TopicOptions.RetentionTime), o => o.RetentionTime = TimeSpan.Zero },
        { nameof(TopicOptions.TombstoneRetention), o => o.TombstoneRetention = TimeSpan.FromMinutes(-1) },
        { nameof(TopicOptions.CompactionMaxKeys), o => o.CompactionMaxKeys = 0 },
    };

    [Theory]
    [MemberData(nameof(InvalidTopicOptions))]
    public void An_invalid_topic_option_is_refused_at_topic_creation_naming_the_field(string field, Action<TopicOptions> breakIt)
    {
        using var dir = new TempDirectory();
        using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        var options = new TopicOptions();
        breakIt(options);

        var e = Assert.Throws<ArgumentException>(() => log.GetOrCreateTopic("orders", options));

        Assert.Equal(field, e.ParamName);
        Assert.Contains($"TopicOptions.{field} for topic 'orders'", e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "topics", "orders")), "nothing is created for an invalid topic");
    }

    [Theory]
    [MemberData(nameof(InvalidTopicOptions))]
    public void An_invalid_default_topic_option_is_refused_at_open_naming_the_field(string field, Action<TopicOptions> breakIt)
    {
        using var dir = new TempDirectory();
        var options = new EmbeddedLogOptions();
        breakIt(options.DefaultTopic);

        var e = Assert.Throws<ArgumentException>(() => EmbeddedLog.Open(dir.Path, options));

        Assert.Equal(field, e.ParamName);
        Assert.False(File.Exists(Path.Combine(dir.Path, ".lock")), "the log is not opened with invalid options");
    }

    public static TheoryData<string, Action<EmbeddedLogOptions>> InvalidLogOptions => new()
    {
        { nameof(EmbeddedLogOptions.DefaultTopic), o => o.DefaultTopic = null! },
        { nameof(EmbeddedLogOptions.MaintenanceInterval), o => o.MaintenanceInterval = TimeSpan.Zero },
        { nameof(EmbeddedLogOptions.TimeProvider), o => o.TimeProvider = null! },
        { nameof(EmbeddedLogOptions.GroupCommitDelay), o => o.GroupCommitDelay = TimeSpan.FromMilliseconds(-1) },
        { nameof(EmbeddedLogOptions.GroupCommitDelay), o => o.GroupCommitDelay = TimeSpan.FromSeconds(1) },
        { nameof(EmbeddedLogOptions.GroupCommitDelayMinAppends), o => o.GroupCommitDelayMinAppends = 0 },
    };

    [Theory]
    [MemberData(nameof(InvalidLogOptions))]
    public void An_invalid_log_option_is_refused_at_open_naming_the_field(string field, Action<EmbeddedLogOptions> breakIt)
    {
        using var dir = new TempDirectory();
        var options = new EmbeddedLogOptions();
        breakIt(options);

        var e = Assert.Throws<ArgumentException>(() => EmbeddedLog.Open(dir.Path, options));

        Assert.Equal(field, e.ParamName);
        Assert.Contains($"EmbeddedLogOptions.{field}", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("has space")]
    [InlineData("slash/y")]
    [InlineData("ünicode")]
    public void An_invalid_topic_name_is_refused(string name)
    {
        using var dir = new TempDirectory();
        using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });

        var e = Assert.Throws<ArgumentException>(() => log.GetOrCreateTopic(name));

        Assert.Equal("name", e.ParamName);
    }

    [Fact]
    public void A_topic_name_of_250_characters_is_refused_and_249_accepted()
    {
        using var dir = new TempDirectory();
        using var log = EmbeddedLog.Open(dir.Path, new EmbeddedLogOptions { MaintenanceInterval = null });
        Assert.Throws<ArgumentException>(() => EmbeddedLog.ValidateTopicName(new string('a', 250)));
        EmbeddedLog.ValidateTopicName(new string('a', 249));
        Assert.Equal("a.b_c-D9", log.GetOrCreateTopic("a.b_c-D9").Name);
    }
}
