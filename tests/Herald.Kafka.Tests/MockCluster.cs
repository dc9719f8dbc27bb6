namespace Herald.Kafka.Tests;

/// <summary>librdkafka's mock cluster (<see cref="KafkaMockCluster"/>) as a test fixture: one per
/// test class; each test uses topics and groups of its own.</summary>
public sealed class MockCluster : IDisposable
{
    private readonly KafkaMockCluster _cluster = new();

    public string BootstrapServers => _cluster.BootstrapServers;

    /// <summary>A name no other test uses.</summary>
    public static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)];

    public void Dispose() => _cluster.Dispose();
}
