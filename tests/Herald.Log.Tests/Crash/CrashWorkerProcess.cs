using System.Diagnostics;
using System.Text;

namespace Herald.Log.Tests.Crash;

/// <summary>A running Herald.Log.CrashWorker child: its stdout read asynchronously line by line,
/// a way to await its first acknowledgements, and SIGKILL.</summary>
internal sealed class CrashWorkerProcess : IDisposable
{
    private readonly Process _process;
    private readonly Lock _lock = new();
    private readonly List<string> _lines = [];
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private (int Count, TaskCompletionSource Signal)? _waiter;

    private CrashWorkerProcess(Process process) => _process = process;

    /// <summary>The worker's dll, copied next to the tests by the project reference.</summary>
    public static string WorkerDll => Path.Combine(AppContext.BaseDirectory, "Herald.Log.CrashWorker.dll");

    public static CrashWorkerProcess Start(string logDirectory, int run)
    {
        var info = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(WorkerDll);
        info.ArgumentList.Add(logDirectory);
        info.ArgumentList.Add(run.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var worker = new CrashWorkerProcess(process);
        process.OutputDataReceived += (_, e) => worker.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (worker._lock) worker._stderr.AppendLine(e.Data); };
        process.Exited += (_, _) => worker._exited.TrySetResult();
        if (!process.Start()) throw new InvalidOperationException($"could not start {info.FileName} {WorkerDll}");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return worker;
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
            if (_waiter is { } w && _lines.Count >= w.Count)
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

    /// <summary>Completes once the child has printed <paramref name="count"/> lines; fails if it
    /// exits first or <paramref name="timeout"/> passes.</summary>
    public async Task WaitForLinesAsync(int count, TimeSpan timeout)
    {
        var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (_lines.Count >= count) return;
            _waiter = (count, signal);
        }
        var first = await Task.WhenAny(signal.Task, _exited.Task).WaitAsync(timeout);
        if (first != signal.Task)
        {
            await _process.WaitForExitAsync();
            throw new InvalidOperationException($"the crash worker exited with code {_process.ExitCode} before printing {count} lines: {Stderr}");
        }
    }

    /// <summary>Sends SIGKILL, waits for the child to die and its stdout to end, and returns every
    /// line it printed.</summary>
    public async Task<IReadOnlyList<string>> KillAsync(TimeSpan timeout)
    {
        if (_process.HasExited)
            throw new InvalidOperationException($"the crash worker exited by itself with code {_process.ExitCode}: {Stderr}");
        _process.Kill(); // SIGKILL on Unix
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token); // also waits for the end of redirected stdout
        if (OperatingSystem.IsLinux() && _process.ExitCode != 128 + 9)
            throw new InvalidOperationException($"the crash worker ended with code {_process.ExitCode}, not by SIGKILL: {Stderr}");
        lock (_lock) return [.. _lines];
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
