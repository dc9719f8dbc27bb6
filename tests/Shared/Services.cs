namespace Herald.Testing;

/// <summary>The external services some tests need (PostgreSQL, Redis), found through environment
/// variables that <c>.ci/run</c> sets once it has started them: <c>HERALD_POSTGRES</c> (an Npgsql
/// connection string to a database the tests may create schemas and tables in) and
/// <c>HERALD_REDIS</c> (a StackExchange.Redis configuration such as <c>127.0.0.1:6379</c>).
/// On a developer machine without them the tests are skipped, saying what to set; under CI
/// (<c>CI=true</c>) they are never skipped, so a missing service fails them.</summary>
internal static class Services
{
    public static bool UnderCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    public static string? Postgres => Environment.GetEnvironmentVariable("HERALD_POSTGRES") is { Length: > 0 } v ? v : null;

    public static string? Redis => Environment.GetEnvironmentVariable("HERALD_REDIS") is { Length: > 0 } v ? v : null;

    /// <summary>The PostgreSQL connection string, or a clear failure under CI when it is missing.</summary>
    public static string RequirePostgres() => Postgres
        ?? throw new InvalidOperationException("HERALD_POSTGRES is not set: under CI, .ci/run must install and start PostgreSQL and export its connection string");

    /// <summary>The Redis configuration, or a clear failure under CI when it is missing.</summary>
    public static string RequireRedis() => Redis
        ?? throw new InvalidOperationException("HERALD_REDIS is not set: under CI, .ci/run must install and start Redis and export its address");

    internal static string? SkipUnless(string? value, string variable, string service) =>
        value is not null || UnderCi
            ? null
            : $"needs {service}: set {variable} (as .ci/run does) to run it";
}

/// <summary>A fact that needs PostgreSQL (<c>HERALD_POSTGRES</c>); skipped without it unless under CI.</summary>
internal sealed class PostgresFactAttribute : FactAttribute
{
    public PostgresFactAttribute() => Skip = Services.SkipUnless(Services.Postgres, "HERALD_POSTGRES", "PostgreSQL");
}

/// <summary>A theory that needs PostgreSQL (<c>HERALD_POSTGRES</c>); skipped without it unless under CI.</summary>
internal sealed class PostgresTheoryAttribute : TheoryAttribute
{
    public PostgresTheoryAttribute() => Skip = Services.SkipUnless(Services.Postgres, "HERALD_POSTGRES", "PostgreSQL");
}

/// <summary>A fact that needs Redis (<c>HERALD_REDIS</c>); skipped without it unless under CI.</summary>
internal sealed class RedisFactAttribute : FactAttribute
{
    public RedisFactAttribute() => Skip = Services.SkipUnless(Services.Redis, "HERALD_REDIS", "Redis");
}
