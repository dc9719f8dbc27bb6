using Microsoft.Data.Sqlite;

namespace Herald.EntityFrameworkCore.Tests.Kit;

/// <summary>A fresh directory under the system temp folder, deleted on dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory(string? name = null)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "herald-efcore-tests", (name ?? "t") + "-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    /// <summary>A connection string for a database file in this directory.</summary>
    public string Database(string fileName = "shop.db") =>
        new SqliteConnectionStringBuilder { DataSource = System.IO.Path.Combine(Path, fileName) }.ToString();

    public void Dispose()
    {
        // Pooled connections keep the database files open.
        SqliteConnection.ClearAllPools();
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}
