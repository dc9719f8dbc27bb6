using System.Diagnostics;
using System.Globalization;
using System.Text;
using Herald.CrashWorker;

namespace Herald.Tests.Crash;

/// <summary>A running Herald.CrashWorker child: counts the "handled" progress lines of its stdout
/// as they arrive, keeps its stderr, and can be awaited to a count of handled events, killed with
/// SIGKILL, or awaited to its exit.</summary>
internal sealed class PipelineWorkerProcess : IDisposable
{
    private readonly Process _process;
    private readonly Lock _lock = new();
    private readonly StringBuilder _stderr = new();
    private readonly List<string> _otherLines = [];
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _handled;
    private (int Count, TaskCompletionSource Signal)? _waiter;

    private PipelineWorkerProcess(Process process) => _process = process;

    /// <summary>The worker's dll, copied next to the tests by the project reference.</summary>
    public static string WorkerDll => Path.Combine(AppContext.BaseDirectory, "Herald.CrashWorker.dll");

    public static PipelineWorkerProcess Start(string dataDirectory, string mode, int events, int publishAhead, int seed)
    {
        var info = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(WorkerDll);
        info.ArgumentList.Add(dataDirectory);
        info.ArgumentList.Add(mode);
        info.ArgumentList.Add(events.ToString(CultureInfo.InvariantCulture));
        info.ArgumentList.Add(publishAhead.ToString(CultureInfo.InvariantCulture));
        info.ArgumentList.Add(seed.ToString(CultureInfo.InvariantCulture));
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var worker = new PipelineWorkerProcess(process);
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
            if (line != PipelineCrashRun.HandledProgress)
            {
                _otherLines.Add(line);
                return;
            }
            _handled++;
            if (_waiter is { } w && _handled >= w.Count)
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

    /// <summary>Stdout lines other than the handled progress lines ("done", or anything unexpected).</summary>
    public IReadOnlyList<string> OtherLines
    {
        get { lock (_lock) return [.. _otherLines]; }
    }

    /// <summary>Completes once the child has reported <paramref name="count"/> handled events;
    /// fails if it exits first or <paramref name="timeout"/> passes.</summary>
    public async Task WaitForHandledAsync(int count, TimeSpan timeout)
    {
        var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (_handled >= count) return;
            _waiter = (count, signal);
        }
        var first = await Task.WhenAny(signal.Task, _exited.Task).WaitAsync(timeout);
        if (first != signal.Task)
        {
            await _process.WaitForExitAsync();
            throw new InvalidOperationException($"the crash worker exited with code {_process.ExitCode} before handling {count} events: {Stderr}");
        }
    }

    /// <summary>Sends SIGKILL and waits for the child to die and its output to end.</summary>
    public async Task KillAsync(TimeSpan timeout)
    {
        if (_process.HasExited)
            throw new InvalidOperationException($"the crash worker exited by itself with code {_process.ExitCode} before the kill: {Stderr}");
        _process.Kill(); // SIGKILL on Unix
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token); // also waits for the end of redirected output
        if (OperatingSystem.IsLinux() && _process.ExitCode != 128 + 9)
            throw new InvalidOperationException($"the crash worker ended with code {_process.ExitCode}, not by SIGKILL: {Stderr}");
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
            throw new TimeoutException($"the crash worker did not exit within {timeout}: {Stderr}");
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
