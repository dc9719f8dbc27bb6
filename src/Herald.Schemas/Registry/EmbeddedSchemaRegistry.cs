using Herald.Schemas.Compatibility;
using Microsoft.Data.Sqlite;

namespace Herald.Schemas.Registry;

/// <summary>A failure of a registry call, with Confluent Schema Registry's error code (40401
/// subject not found, 409 incompatible, 42201 invalid schema...) and HTTP status.</summary>
public sealed class SchemaRegistryException(int errorCode, string message) : Exception(message)
{
    public int ErrorCode { get; } = errorCode;

    /// <summary>The HTTP status Confluent's REST API answers with: the code's first three digits.</summary>
    public int HttpStatus => ErrorCode < 1000 ? ErrorCode : ErrorCode / 100;

    internal static SchemaRegistryException SubjectNotFound(string subject) => new(40401, $"Subject '{subject}' not found.");
    internal static SchemaRegistryException VersionNotFound(string subject, int version) => new(40402, $"Version {version} not found for subject '{subject}'.");
    internal static SchemaRegistryException SchemaNotFound(string what) => new(40403, $"Schema {what} not found.");
    internal static SchemaRegistryException SubjectSoftDeleted(string subject) => new(40404, $"Subject '{subject}' was soft deleted. Set permanent=true to delete permanently.");
    internal static SchemaRegistryException SubjectNotSoftDeleted(string subject) => new(40405, $"Subject '{subject}' was not deleted first before being permanently deleted.");
    internal static SchemaRegistryException VersionSoftDeleted(string subject, int version) => new(40406, $"Version {version} of subject '{subject}' was soft deleted. Set permanent=true to delete permanently.");
    internal static SchemaRegistryException VersionNotSoftDeleted(string subject, int version) => new(40407, $"Version {version} of subject '{subject}' was not deleted first before being permanently deleted.");
    internal static SchemaRegistryException SubjectLevelConfigNotFound(string subject) => new(40408, $"Subject '{subject}' does not have subject-level compatibility configured.");
    internal static SchemaRegistryException InvalidSchema(string why) => new(42201, why);
    internal static SchemaRegistryException InvalidVersion(string version) => new(42202, $"The specified version '{version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\".");
    internal static SchemaRegistryException InvalidCompatibilityLevel(string level) => new(42203, $"Invalid compatibility level '{level}'. Valid values are {string.Join(", ", Enum.GetValues<CompatibilityLevel>().Select(l => l.ToConfluentName()))}.");
    internal static SchemaRegistryException Incompatible(IEnumerable<string> differences) => new(409, "Schema being registered is incompatible with an earlier schema for subject: " + string.Join("; ", differences));
}

/// <summary>A schema as the registry holds it.</summary>
public sealed record RegisteredSchema(int Id, string Subject, int Version, string SchemaType, string Schema);

/// <summary>
/// The embedded schema registry: subjects, their versions, global schema ids, soft and hard
/// deletes, and compatibility levels per subject and globally, with Confluent Schema Registry's
/// semantics and error codes. State lives in a SQLite file of its own (WAL, synchronous=FULL): a
/// registration returns once it is durable.
/// <list type="bullet">
/// <item>A schema's id is global: the same schema (by its parsed, normalized form) registered in
/// two subjects has one id; registered again in a subject it returns the version it has.</item>
/// <item>A registration is checked against the subject's versions that are not deleted, at the
/// subject's level (else the global one, BACKWARD by default), and refused with each breaking
/// path when incompatible; nothing is written then.</item>
/// <item>A soft-deleted version keeps its id (readers of old records still resolve it); a hard
/// delete (permanent, after a soft one) removes the version.</item>
/// </list>
/// Schema types: AVRO (the default). JSON Schema is not handled yet and is refused by name.
/// </summary>
public sealed class EmbeddedSchemaRegistry : ISchemaRegistry, IDisposable
{
    public const string Avro = "AVRO";
    private readonly SqliteConnection _db;
    private readonly SemaphoreSlim _gate = new(1, 1);

    private EmbeddedSchemaRegistry(SqliteConnection db) => _db = db;

    /// <summary>Opens (creating) the registry's database at <paramref name="path"/>.</summary>
    public static EmbeddedSchemaRegistry Open(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        db.Open();
        Execute(db, """
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = FULL;
            CREATE TABLE IF NOT EXISTS registry_schema (id INTEGER PRIMARY KEY, type TEXT NOT NULL, normalized TEXT NOT NULL, text TEXT NOT NULL, UNIQUE (type, normalized));
            CREATE TABLE IF NOT EXISTS registry_version (subject TEXT NOT NULL, version INTEGER NOT NULL, schema_id INTEGER NOT NULL REFERENCES registry_schema(id), deleted INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (subject, version));
            CREATE TABLE IF NOT EXISTS registry_config (subject TEXT PRIMARY KEY, level TEXT NOT NULL);
            """);
        return new EmbeddedSchemaRegistry(db);
    }

    /// <summary>The level when neither the subject nor the registry has one set.</summary>
    public const CompatibilityLevel DefaultLevel = CompatibilityLevel.Backward;

    /// <summary>Registers a schema under a subject; returns its global id (the existing one when
    /// the subject has it already).</summary>
    public async Task<int> RegisterAsync(string subject, string schema, string? schemaType = null, CancellationToken cancellationToken = default)
    {
        ValidateSubject(subject);
        var (type, normalized, parsed) = Parse(schema, schemaType);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var existing = Scalar<long?>("SELECT v.schema_id FROM registry_version v JOIN registry_schema s ON s.id = v.schema_id WHERE v.subject = $subject AND v.deleted = 0 AND s.type = $type AND s.normalized = $normalized",
                ("$subject", subject), ("$type", type), ("$normalized", normalized));
            if (existing is { } found) return (int)found;
            var level = LevelOf(subject);
            var older = Query("SELECT s.text FROM registry_version v JOIN registry_schema s ON s.id = v.schema_id WHERE v.subject = $subject AND v.deleted = 0 ORDER BY v.version",
                r => r.GetString(0), ("$subject", subject));
            var result = SchemaCompatibility.CheckAvro(parsed, older.Select(o => SchemaCompatibility.ParseAvro(o)).ToList(), level);
            if (!result.IsCompatible) throw SchemaRegistryException.Incompatible(result.Differences.Select(d => d.ToString()));
            using var tx = _db.BeginTransaction();
            var id = Scalar<long?>("SELECT id FROM registry_schema WHERE type = $type AND normalized = $normalized", ("$type", type), ("$normalized", normalized))
                ?? Scalar<long>("INSERT INTO registry_schema (type, normalized, text) VALUES ($type, $normalized, $text) RETURNING id", ("$type", type), ("$normalized", normalized), ("$text", schema));
            var version = Scalar<long>("SELECT coalesce(max(version), 0) + 1 FROM registry_version WHERE subject = $subject", ("$subject", subject));
            Execute(_db, "INSERT INTO registry_version (subject, version, schema_id) VALUES ($subject, $version, $id)", ("$subject", subject), ("$version", version), ("$id", id));
            tx.Commit();
            return (int)id;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The subject's version holding this schema (not deleted), or 40403.</summary>
    public async Task<RegisteredSchema> LookUpAsync(string subject, string schema, string? schemaType = null, bool includeDeleted = false, CancellationToken cancellationToken = default)
    {
        var (type, normalized, _) = Parse(schema, schemaType);
        return await Locked(() =>
        {
            RequireSubject(subject, includeDeleted);
            var found = Query("SELECT v.version, s.id, s.text FROM registry_version v JOIN registry_schema s ON s.id = v.schema_id WHERE v.subject = $subject AND s.type = $type AND s.normalized = $normalized AND ($deleted OR v.deleted = 0) ORDER BY v.version LIMIT 1",
                r => new RegisteredSchema((int)r.GetInt64(1), subject, (int)r.GetInt64(0), type, r.GetString(2)),
                ("$subject", subject), ("$type", type), ("$normalized", normalized), ("$deleted", includeDeleted));
            return found.Count == 1 ? found[0] : throw SchemaRegistryException.SchemaNotFound("for subject '" + subject + "'");
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The schema with a global id, soft-deleted versions included (old records name it).</summary>
    public Task<(string SchemaType, string Schema)> GetByIdAsync(int id, CancellationToken cancellationToken = default) => Locked(() =>
    {
        var found = Query("SELECT type, text FROM registry_schema WHERE id = $id", r => (r.GetString(0), r.GetString(1)), ("$id", id));
        return found.Count == 1 ? found[0] : throw SchemaRegistryException.SchemaNotFound("with id " + id);
    }, cancellationToken);

    /// <summary>A version of a subject; <paramref name="version"/> -1 for the latest.</summary>
    public Task<RegisteredSchema> GetVersionAsync(string subject, int version, bool includeDeleted = false, CancellationToken cancellationToken = default) => Locked(() =>
    {
        RequireSubject(subject, includeDeleted);
        var found = Query("SELECT v.version, s.id, s.type, s.text, v.deleted FROM registry_version v JOIN registry_schema s ON s.id = v.schema_id WHERE v.subject = $subject AND ($deleted OR v.deleted = 0) AND ($version = -1 OR v.version = $version) ORDER BY v.version DESC LIMIT 1",
            r => new RegisteredSchema((int)r.GetInt64(1), subject, (int)r.GetInt64(0), r.GetString(2), r.GetString(3)),
            ("$subject", subject), ("$deleted", includeDeleted), ("$version", version));
        return found.Count == 1 ? found[0] : throw SchemaRegistryException.VersionNotFound(subject, version);
    }, cancellationToken);

    public Task<IReadOnlyList<string>> ListSubjectsAsync(bool includeDeleted = false, CancellationToken cancellationToken = default) => Locked<IReadOnlyList<string>>(() =>
        Query("SELECT DISTINCT subject FROM registry_version WHERE $deleted OR deleted = 0 ORDER BY subject", r => r.GetString(0), ("$deleted", includeDeleted)), cancellationToken);

    public Task<IReadOnlyList<int>> ListVersionsAsync(string subject, bool includeDeleted = false, CancellationToken cancellationToken = default) => Locked<IReadOnlyList<int>>(() =>
    {
        RequireSubject(subject, includeDeleted);
        return Query("SELECT version FROM registry_version WHERE subject = $subject AND ($deleted OR deleted = 0) ORDER BY version", r => (int)r.GetInt64(0), ("$subject", subject), ("$deleted", includeDeleted));
    }, cancellationToken);

    /// <summary>Deletes one version: soft (its id stays readable), or permanently after a soft delete.</summary>
    public Task<int> DeleteVersionAsync(string subject, int version, bool permanent = false, CancellationToken cancellationToken = default) => Locked(() =>
    {
        RequireSubject(subject, includeDeleted: true);
        var found = Query("SELECT version, deleted FROM registry_version WHERE subject = $subject AND ($version = -1 OR version = $version) ORDER BY version DESC LIMIT 1",
            r => ((int)r.GetInt64(0), r.GetInt64(1) != 0), ("$subject", subject), ("$version", version));
        if (found.Count == 0) throw SchemaRegistryException.VersionNotFound(subject, version);
        var (which, deleted) = found[0];
        if (permanent)
        {
            if (!deleted) throw SchemaRegistryException.VersionNotSoftDeleted(subject, which);
            Execute(_db, "DELETE FROM registry_version WHERE subject = $subject AND version = $version", ("$subject", subject), ("$version", which));
        }
        else
        {
            if (deleted) throw SchemaRegistryException.VersionSoftDeleted(subject, which);
            Execute(_db, "UPDATE registry_version SET deleted = 1 WHERE subject = $subject AND version = $version", ("$subject", subject), ("$version", which));
        }
        return which;
    }, cancellationToken);

    /// <summary>Deletes a subject's versions: soft, or permanently after a soft delete; returns them.</summary>
    public Task<IReadOnlyList<int>> DeleteSubjectAsync(string subject, bool permanent = false, CancellationToken cancellationToken = default) => Locked<IReadOnlyList<int>>(() =>
    {
        var versions = Query("SELECT version, deleted FROM registry_version WHERE subject = $subject ORDER BY version", r => ((int)r.GetInt64(0), r.GetInt64(1) != 0), ("$subject", subject));
        if (versions.Count == 0) throw SchemaRegistryException.SubjectNotFound(subject);
        if (permanent)
        {
            if (versions.Any(v => !v.Item2)) throw SchemaRegistryException.SubjectNotSoftDeleted(subject);
            Execute(_db, "DELETE FROM registry_version WHERE subject = $subject", ("$subject", subject));
            Execute(_db, "DELETE FROM registry_config WHERE subject = $subject", ("$subject", subject));
            return versions.ConvertAll(v => v.Item1);
        }
        if (versions.All(v => v.Item2)) throw SchemaRegistryException.SubjectSoftDeleted(subject);
        Execute(_db, "UPDATE registry_version SET deleted = 1 WHERE subject = $subject", ("$subject", subject));
        return versions.Where(v => !v.Item2).Select(v => v.Item1).ToList();
    }, cancellationToken);

    /// <summary>The level of a subject (its own, else the global one), or the global level when
    /// <paramref name="subject"/> is null.</summary>
    public Task<CompatibilityLevel> GetLevelAsync(string? subject = null, bool fallBack = true, CancellationToken cancellationToken = default) => Locked(() =>
    {
        if (subject is null) return GlobalLevel();
        return OwnLevel(subject) ?? (fallBack ? GlobalLevel() : throw SchemaRegistryException.SubjectLevelConfigNotFound(subject));
    }, cancellationToken);

    /// <summary>Sets a subject's level, or the global one when <paramref name="subject"/> is null.</summary>
    public Task SetLevelAsync(string? subject, CompatibilityLevel level, CancellationToken cancellationToken = default) => Locked(() =>
    {
        Execute(_db, "INSERT INTO registry_config (subject, level) VALUES ($subject, $level) ON CONFLICT (subject) DO UPDATE SET level = excluded.level",
            ("$subject", subject ?? ""), ("$level", level.ToConfluentName()));
        return true;
    }, cancellationToken);

    /// <summary>Removes a subject's own level (it falls back to the global one); returns what it was.</summary>
    public Task<CompatibilityLevel> DeleteLevelAsync(string subject, CancellationToken cancellationToken = default) => Locked(() =>
    {
        var own = Scalar<string?>("DELETE FROM registry_config WHERE subject = $subject RETURNING level", ("$subject", subject));
        return own is not null && CompatibilityLevels.TryParse(own, out var level) ? level : throw SchemaRegistryException.SubjectLevelConfigNotFound(subject);
    }, cancellationToken);

    /// <summary>Whether a schema could be registered: against one version (-1 the latest) or,
    /// with <paramref name="version"/> null, against what the subject's level checks.</summary>
    public Task<CompatibilityResult> TestCompatibilityAsync(string subject, string schema, int? version = null, string? schemaType = null, CancellationToken cancellationToken = default)
    {
        var (_, _, parsed) = Parse(schema, schemaType);
        return Locked(() =>
        {
            var level = LevelOf(subject);
            var older = Query("SELECT version, s.text FROM registry_version v JOIN registry_schema s ON s.id = v.schema_id WHERE v.subject = $subject AND v.deleted = 0 ORDER BY v.version",
                r => ((int)r.GetInt64(0), r.GetString(1)), ("$subject", subject));
            if (version is { } one)
            {
                var chosen = one == -1 ? older.LastOrDefault() : older.FirstOrDefault(o => o.Item1 == one);
                if (chosen.Item2 is null) throw older.Count == 0 ? SchemaRegistryException.SubjectNotFound(subject) : SchemaRegistryException.VersionNotFound(subject, one);
                older = [chosen];
                level = level.WithoutTransitivity();
            }
            return SchemaCompatibility.CheckAvro(parsed, older.Select(o => SchemaCompatibility.ParseAvro(o.Item2)).ToList(), level);
        }, cancellationToken);
    }

    private CompatibilityLevel LevelOf(string subject) => OwnLevel(subject) ?? GlobalLevel();

    private CompatibilityLevel GlobalLevel() => OwnLevel("") ?? DefaultLevel; // the global level is kept as subject ''

    private CompatibilityLevel? OwnLevel(string subject)
    {
        var own = Scalar<string?>("SELECT level FROM registry_config WHERE subject = $subject", ("$subject", subject));
        return own is not null && CompatibilityLevels.TryParse(own, out var level) ? level : null;
    }

    private void RequireSubject(string subject, bool includeDeleted)
    {
        var (all, live) = Query("SELECT count(*), coalesce(sum(deleted = 0), 0) FROM registry_version WHERE subject = $subject", r => (r.GetInt64(0), r.GetInt64(1)), ("$subject", subject))[0];
        if (all == 0 || (live == 0 && !includeDeleted)) throw SchemaRegistryException.SubjectNotFound(subject);
    }

    private static void ValidateSubject(string subject)
    {
        if (string.IsNullOrWhiteSpace(subject) || subject.Length > 255 || subject.Any(char.IsControl))
            throw new SchemaRegistryException(42208, $"Subject '{subject}' is not a valid subject name (1 to 255 characters, none of them control characters).");
    }

    /// <summary>The schema's type, its normalized form (its identity), and the parsed schema.</summary>
    private static (string Type, string Normalized, global::Avro.Schema Parsed) Parse(string schema, string? schemaType)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var type = string.IsNullOrEmpty(schemaType) ? Avro : schemaType.ToUpperInvariant();
        if (type != Avro) throw SchemaRegistryException.InvalidSchema($"Schema type '{schemaType}' is not handled by this registry yet (AVRO is).");
        try
        {
            var parsed = SchemaCompatibility.ParseAvro(schema);
            return (type, parsed.ToString(), parsed);
        }
        catch (InvalidSchemaException e)
        {
            throw SchemaRegistryException.InvalidSchema("Invalid schema: " + e.Message);
        }
    }

    private async Task<T> Locked<T>(Func<T> work, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return work();
        }
        finally
        {
            _gate.Release();
        }
    }

    private static SqliteCommand Command(SqliteConnection db, string sql, (string Name, object? Value)[] parameters)
    {
        var command = db.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return command;
    }

    private static void Execute(SqliteConnection db, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(db, sql, parameters);
        command.ExecuteNonQuery();
    }

    private T Scalar<T>(string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(_db, sql, parameters);
        var result = command.ExecuteScalar();
        return result is null or DBNull ? default! : (T)Convert.ChangeType(result, Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    private List<T> Query<T>(string sql, Func<SqliteDataReader, T> read, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(_db, sql, parameters);
        using var reader = command.ExecuteReader();
        var rows = new List<T>();
        while (reader.Read()) rows.Add(read(reader));
        return rows;
    }

    public void Dispose()
    {
        _db.Dispose();
        _gate.Dispose();
    }
}
