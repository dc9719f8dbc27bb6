using System.Diagnostics;

namespace Herald.Internal;

/// <summary>Finds the first stack frame of an exception that belongs to the application (not the
/// runtime, not Herald), as "Namespace.Type.Method": with the exception type it groups dead letters
/// by failure.</summary>
internal static class FailureFrames
{
    public static string? FirstApplicationFrame(Exception error)
    {
        // Herald throws it from the composed chain: the upcaster that failed is in the inner exception.
        if (error is UpcastFailedException { InnerException: { } upcaster }) return FirstApplicationFrame(upcaster);
        var frames = new StackTrace(error, fNeedFileInfo: false).GetFrames();
        foreach (var frame in frames)
        {
            var method = frame.GetMethod();
            var type = method?.DeclaringType;
            if (method is null || type is null) continue;
            var name = method.Name;
            // An async method runs as MoveNext of a compiler-made type named "<Method>d__N".
            if (type.Name.StartsWith('<') && type.DeclaringType is { } outer)
            {
                var end = type.Name.IndexOf('>', StringComparison.Ordinal);
                name = end > 1 ? type.Name[1..end] : name;
                type = outer;
            }
            var ns = type.Namespace ?? "";
            if (IsFramework(ns)) continue;
            return $"{type.FullName}.{name}";
        }
        return null;
    }

    private static bool IsFramework(string ns) =>
        ns == "System" || ns.StartsWith("System.", StringComparison.Ordinal)
        || ns == "Microsoft" || ns.StartsWith("Microsoft.", StringComparison.Ordinal)
        || ns == "Herald" || ns.StartsWith("Herald.Internal", StringComparison.Ordinal)
        || ns.StartsWith("Herald.Subscriptions", StringComparison.Ordinal) || ns.StartsWith("Herald.Embedded", StringComparison.Ordinal)
        || ns.StartsWith("Herald.Transport", StringComparison.Ordinal) || ns.StartsWith("Herald.Serialization", StringComparison.Ordinal);
}
