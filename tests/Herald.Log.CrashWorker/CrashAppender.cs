namespace Herald.Log.CrashWorker;

/// <summary>One appender of a crash run: appends the records of <see cref="CrashRecords"/> for its
/// (run, appender) in sequence order, one call at a time, each call one record or one batch of a
/// few. A failed call's ids are never reused, so a record in the log names exactly one attempt.</summary>
public sealed class CrashAppender(LogTopic topic, int run, int appender)
{
    private readonly List<NewRecord> _batch = [];

    public LogPartition Partition { get; } = topic[CrashRecords.PartitionOf(new CrashRecordId(run, appender, 0))];

    /// <summary>The sequence number the next call starts at.</summary>
    public int NextSeq { get; private set; }

    /// <summary>The ids the next call appends: <see cref="NextSeq"/> and the following ones.</summary>
    public int NextCount => CrashRecords.BatchSize(run, appender, NextSeq);

    public CrashRecordId Id(int seq) => new(run, appender, seq);

    /// <summary>Appends the next call's records; completes with the first one's offset once they
    /// are acknowledged, or throws what the append threw. Either way the ids are used up.</summary>
    public async Task<(long FirstOffset, int FirstSeq, int Count)> AppendNextAsync(CancellationToken cancellationToken = default)
    {
        var seq = NextSeq;
        var count = NextCount;
        NextSeq += count;
        if (count == 1)
            return (await Partition.AppendAsync(CrashRecords.Create(Id(seq)), cancellationToken), seq, 1);
        _batch.Clear();
        for (var i = 0; i < count; i++) _batch.Add(CrashRecords.Create(Id(seq + i)));
        return (await Partition.AppendAsync(_batch, cancellationToken), seq, count);
    }
}
