namespace Herald.CrashWorker;

/// <summary>Keeps each key's publisher at most a number of events ahead of its handler, so that
/// publishing and handling overlap for the whole run and a kill lands in the middle of both.</summary>
internal sealed class PublishWindow
{
    private readonly Dictionary<string, SemaphoreSlim> _keys = new(StringComparer.Ordinal);

    public PublishWindow(int eventsAhead)
    {
        for (var k = 0; k < PipelineCrashRun.Keys; k++) _keys[PipelineCrashRun.KeyName(k)] = new SemaphoreSlim(eventsAhead);
    }

    /// <summary>Waits until <paramref name="key"/> may publish one more event.</summary>
    public Task EnterAsync(string key) => _keys[key].WaitAsync();

    /// <summary>An event of <paramref name="key"/> was handled for the first time.</summary>
    public void Handled(string key) => _keys[key].Release();
}
