namespace Herald.CrashWorker;

/// <summary>The event of a pipeline crash run: the <paramref name="Seq"/>-th event of partition key
/// <paramref name="Key"/>. Each key's events are published one after another, so their sequence
/// order is their offset order in the key's partition.</summary>
public sealed record PipelineCrashEvent(string Key, int Seq);
