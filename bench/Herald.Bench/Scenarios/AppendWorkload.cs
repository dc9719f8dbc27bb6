using Herald.Log;

namespace Herald.Bench.Scenarios;

/// <summary>The records a scenario appends, made once: every record shares one payload array,
/// so the harness allocates nothing per record and the engine's cost is what is measured.</summary>
public sealed class AppendWorkload
{
    public AppendWorkload(int size, int batch)
    {
        var payload = new byte[size];
        new Random(42).NextBytes(payload);
        Record = new NewRecord(null, payload);
        Batch = new NewRecord[batch];
        Array.Fill(Batch, Record);
    }

    /// <summary>One record with a null key and the shared payload.</summary>
    public NewRecord Record { get; }

    /// <summary>A list of <see cref="Record"/> for batched appends; the engine only reads it, so all
    /// appenders share it.</summary>
    public NewRecord[] Batch { get; }

    /// <summary>The first <paramref name="count"/> records of <see cref="Batch"/> as a new list
    /// (for the last, shorter call of an appender).</summary>
    public NewRecord[] Prefix(int count) => Batch[..count];
}
