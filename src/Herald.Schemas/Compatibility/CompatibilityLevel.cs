namespace Herald.Schemas.Compatibility;

/// <summary>Which older versions a new schema must agree with, and in which direction, as
/// Confluent's Schema Registry defines the levels. "Backward": the new schema reads data written
/// with the older one (consumers upgrade first). "Forward": the older schema reads data written
/// with the new one (producers upgrade first). "Full": both. Transitive levels check every older
/// version; the others only the newest.</summary>
public enum CompatibilityLevel
{
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

/// <summary>Which way data goes in one check.</summary>
public enum CompatibilityDirection
{
    /// <summary>The new schema reads what the older one wrote.</summary>
    Backward,

    /// <summary>The older schema reads what the new one wrote.</summary>
    Forward,
}

public static class CompatibilityLevels
{
    /// <summary>The level's Confluent name (BACKWARD_TRANSITIVE...).</summary>
    public static string ToConfluentName(this CompatibilityLevel level) => level switch
    {
        CompatibilityLevel.None => "NONE",
        CompatibilityLevel.Backward => "BACKWARD",
        CompatibilityLevel.BackwardTransitive => "BACKWARD_TRANSITIVE",
        CompatibilityLevel.Forward => "FORWARD",
        CompatibilityLevel.ForwardTransitive => "FORWARD_TRANSITIVE",
        CompatibilityLevel.Full => "FULL",
        CompatibilityLevel.FullTransitive => "FULL_TRANSITIVE",
        _ => throw new ArgumentOutOfRangeException(nameof(level), level, "not a compatibility level"),
    };

    /// <summary>Parses a Confluent name (case-insensitive); false for anything else.</summary>
    public static bool TryParse(string? name, out CompatibilityLevel level)
    {
        foreach (var candidate in Enum.GetValues<CompatibilityLevel>())
        {
            if (string.Equals(candidate.ToConfluentName(), name?.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                level = candidate;
                return true;
            }
        }
        level = CompatibilityLevel.None;
        return false;
    }

    public static bool IsTransitive(this CompatibilityLevel level) =>
        level is CompatibilityLevel.BackwardTransitive or CompatibilityLevel.ForwardTransitive or CompatibilityLevel.FullTransitive;

    /// <summary>The level against one version: a transitive level's non-transitive form.</summary>
    public static CompatibilityLevel WithoutTransitivity(this CompatibilityLevel level) => level switch
    {
        CompatibilityLevel.BackwardTransitive => CompatibilityLevel.Backward,
        CompatibilityLevel.ForwardTransitive => CompatibilityLevel.Forward,
        CompatibilityLevel.FullTransitive => CompatibilityLevel.Full,
        _ => level,
    };

    /// <summary>The directions a level checks.</summary>
    public static IReadOnlyList<CompatibilityDirection> Directions(this CompatibilityLevel level) => level switch
    {
        CompatibilityLevel.None => [],
        CompatibilityLevel.Backward or CompatibilityLevel.BackwardTransitive => [CompatibilityDirection.Backward],
        CompatibilityLevel.Forward or CompatibilityLevel.ForwardTransitive => [CompatibilityDirection.Forward],
        _ => [CompatibilityDirection.Backward, CompatibilityDirection.Forward],
    };
}
