using System.Diagnostics;
using System.Text;

namespace Herald.Testing;

/// <summary>A .NET child process run by a crash test (<c>dotnet worker.dll args...</c>): its stdout
/// read line by line as it arrives, its stderr kept, a count of the lines that match a predicate to
/// await, and SIGKILL. Shared by the test projects as a linked source file.</summary>
internal sealed class ChildProcess : IDisposable
{
    private readonly Process _process;
    private readonly string _name;
    private readonly Func<string, bool> _counts;
    private readonly Lock _lock = new();
    private readonly List<string> _lines = [];
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _counted;
    private (int Count, TaskCompletionSource Signal)? _waiter;

    private ChildProcess(Process process, string name, Func<string, bool> counts)
    {
        _process = process;
        _name = name;
        _counts = counts;
    }

    /// <summary>A worker dll copied next to the tests by a project reference.</summary>
    public static string Dll(string assemblyName) => Path.Combine(AppContext.BaseDirectory, assemblyName + ".dll");

    /// <summary>Starts <c>dotnet <paramref name="dll"/> <paramref name="arguments"/></c>; lines for which
    /// <paramref name="counts"/> holds (every line when it is null) are counted for <see cref="WaitForCountAsync"/>.</summary>
    public static ChildProcess Start(string dll, IEnumerable<string> arguments, Func<string, bool>? counts = null)
    {
        var info = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dll);
        foreach (var a in arguments) info.ArgumentList.Add(a);
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var child = new ChildProcess(process, Path.GetFileNameWithoutExtension(dll), counts ?? (_ => true));
        process.OutputDataReceived += (_, e) => child.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (child._lock) child._stderr.AppendLine(e.Data); };
        process.Exited += (_, _) => child._exited.TrySetResult();
        if (!process.Start()) throw new InvalidOperationException($"could not start {info.FileName} {dll}");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>The dotnet host running these tests (the SDK sets DOTNET_HOST_PATH), else the one on PATH.</summary>
    private static string DotnetHost()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host)) return host;
        if (Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet") return self;
        return "dotnet";
    }

    private void OnLine(string? line)
    {
        if (line is null) return; // end of stream
        lock (_lock)
        {
            _lines.Add(line);
            if (!_counts(line)) return;
            _counted++;
            if (_waiter is { } w && _counted >= w.Count)
            {
                _waiter = null;
                w.Signal.TrySetResult();
            }
        }
    }

    public string Stderr
    {
        get { lock (_lock) return _stderr.ToString(); }
    }

    /// <summary>Every stdout line so far.</summary>
    public IReadOnlyList<string> Lines
    {
        get { lock (_lock) return [.. _lines]; }
    }

    /// <summary>Completes once <paramref name="count"/> counted lines have arrived; fails if the
    /// child exits first or <paramref name="timeout"/> passes.</summary>
    public async Task WaitForCountAsync(int count, TimeSpan timeout)
    {
        var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (_counted >= count) return;
            _waiter = (count, signal);
        }
        var first = await Task.WhenAny(signal.Task, _exited.Task).WaitAsync(timeout);
        if (first != signal.Task)
        {
            await _process.WaitForExitAsync();
            throw new InvalidOperationException($"{_name} exited with code {_process.ExitCode} before {count} counted lines: {Stderr}");
        }
    }

    /// <summary>Completes once a stdout line matching <paramref name="match"/> has arrived (or had
    /// already); fails if the child exits first or <paramref name="timeout"/> passes.</summary>
    public async Task WaitForLineAsync(Func<string, bool> match, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (Lines.Any(match)) return;
            if (_process.HasExited)
            {
                await _process.WaitForExitAsync();
                if (Lines.Any(match)) return;
                throw new InvalidOperationException($"{_name} exited with code {_process.ExitCode} before the line awaited: {Stderr}");
            }
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{_name} did not print the line awaited within {timeout}: {Stderr}");
            await Task.Delay(10);
        }
    }

    /// <summary>Sends SIGKILL, waits for the child to die and its stdout to end, and returns every
    /// line it printed.</summary>
    public async Task<IReadOnlyList<string>> KillAsync(TimeSpan timeout)
    {
        if (_process.HasExited)
            throw new InvalidOperationException($"{_name} exited by itself with code {_process.ExitCode} before the kill: {Stderr}");
        _process.Kill(); // SIGKILL on Unix
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token); // also waits for the end of redirected output
        if (OperatingSystem.IsLinux() && _process.ExitCode != 128 + 9)
            throw new InvalidOperationException($"{_name} ended with code {_process.ExitCode}, not by SIGKILL: {Stderr}");
        return Lines;
    }

    /// <summary>Waits for the child to exit by itself and its output to end; returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{_name} did not exit within {timeout}: {Stderr}");
        }
        return _process.ExitCode;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited) _process.Kill();
        }
        catch (InvalidOperationException)
        {
            // it exited meanwhile
        }
        _process.Dispose();
    }
}
