using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Herald.Schemas.Registry;

/// <summary>A client of a remote Confluent-compatible schema registry (Herald's
/// <c>herald schema-registry</c>, Confluent's, or another speaking its REST API), behind the same
/// interface as the embedded one. Errors come back as <see cref="SchemaRegistryException"/>s with
/// the registry's own error codes and messages. Responses are limited to 16 MiB.</summary>
public sealed class HttpSchemaRegistry : ISchemaRegistry, IDisposable
{
    private const string MediaType = "application/vnd.schemaregistry.v1+json";
    private readonly HttpClient _http;

    /// <param name="url">The registry's base URL, such as <c>http://127.0.0.1:8081</c>.</param>
    /// <param name="configure">Authentication headers, a handler's certificates...</param>
    public HttpSchemaRegistry(string url, TimeSpan? timeout = null, Action<HttpClient>? configure = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(url);
        if (!Uri.TryCreate(url.EndsWith('/') ? url : url + "/", UriKind.Absolute, out var baseAddress) || baseAddress.Scheme is not ("http" or "https"))
            throw new ArgumentException($"'{url}' is not an http or https URL", nameof(url));
        _http = new HttpClient { BaseAddress = baseAddress, Timeout = timeout ?? TimeSpan.FromSeconds(30), MaxResponseContentBufferSize = 16 * 1024 * 1024 };
        configure?.Invoke(_http);
    }

    public async Task<int> RegisterAsync(string subject, string schema, string? schemaType = null, IReadOnlyList<SchemaReference>? references = null, CancellationToken cancellationToken = default)
    {
        var body = await SendAsync(HttpMethod.Post, $"subjects/{Uri.EscapeDataString(subject)}/versions", SchemaBody(schema, schemaType, references), cancellationToken).ConfigureAwait(false);
        return body["id"]?.GetValue<int>() ?? throw Unexpected("register", body);
    }

    public async Task<RegisteredSchema> LookUpAsync(string subject, string schema, string? schemaType = null, IReadOnlyList<SchemaReference>? references = null, bool includeDeleted = false, CancellationToken cancellationToken = default)
    {
        var body = await SendAsync(HttpMethod.Post, $"subjects/{Uri.EscapeDataString(subject)}?deleted={(includeDeleted ? "true" : "false")}", SchemaBody(schema, schemaType, references), cancellationToken).ConfigureAwait(false);
        return Registered(body, subject, schema, "look up");
    }

    public async Task<StoredSchema> GetByIdAsync(int id, CancellationToken cancellationToken = default)
    {
        var body = await SendAsync(HttpMethod.Get, $"schemas/ids/{id}", null, cancellationToken).ConfigureAwait(false);
        return new StoredSchema(body["schemaType"]?.GetValue<string>() ?? EmbeddedSchemaRegistry.Avro, body["schema"]?.GetValue<string>() ?? throw Unexpected("get by id", body), References(body));
    }

    public async Task<RegisteredSchema> GetVersionAsync(string subject, int version, bool includeDeleted = false, CancellationToken cancellationToken = default)
    {
        var which = version == -1 ? "latest" : version.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var body = await SendAsync(HttpMethod.Get, $"subjects/{Uri.EscapeDataString(subject)}/versions/{which}?deleted={(includeDeleted ? "true" : "false")}", null, cancellationToken).ConfigureAwait(false);
        return Registered(body, subject, null, "get a version");
    }

    private RegisteredSchema Registered(JsonObject body, string subject, string? schema, string what) =>
        new(body["id"]?.GetValue<int>() ?? throw Unexpected(what, body),
            body["subject"]?.GetValue<string>() ?? subject,
            body["version"]?.GetValue<int>() ?? throw Unexpected(what, body),
            body["schemaType"]?.GetValue<string>() ?? EmbeddedSchemaRegistry.Avro,
            body["schema"]?.GetValue<string>() ?? schema ?? throw Unexpected(what, body))
        { References = References(body) };

    private static List<SchemaReference> References(JsonObject body) => body["references"] is JsonArray array
        ? array.OfType<JsonObject>().Select(r => new SchemaReference(r["name"]!.GetValue<string>(), r["subject"]!.GetValue<string>(), r["version"]!.GetValue<int>())).ToList()
        : [];

    private static JsonObject SchemaBody(string schema, string? schemaType, IReadOnlyList<SchemaReference>? references)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var body = new JsonObject { ["schema"] = schema };
        if (schemaType is not null && !string.Equals(schemaType, EmbeddedSchemaRegistry.Avro, StringComparison.OrdinalIgnoreCase)) body["schemaType"] = schemaType;
        if (references is { Count: > 0 }) body["references"] = SchemaRegistryApi.References(references);
        return body;
    }

    private async Task<JsonObject> SendAsync(HttpMethod method, string path, JsonObject? body, CancellationToken cancellationToken) =>
        await CallAsync(method, path, body, cancellationToken).ConfigureAwait(false) as JsonObject
            ?? throw new SchemaRegistryException(50001, $"{_http.BaseAddress}{path}: the answer is not a JSON object");

    /// <summary>One call of the registry's REST API (the CLI's too): its JSON answer, or its
    /// error as a <see cref="SchemaRegistryException"/>.</summary>
    internal async Task<JsonNode> CallAsync(HttpMethod method, string path, JsonObject? body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null) request.Content = JsonContent.Create(body, mediaType: new System.Net.Http.Headers.MediaTypeHeaderValue(MediaType));
        request.Headers.Accept.ParseAdd(MediaType);
        using var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        JsonNode? parsed;
        try
        {
            parsed = text.Length == 0 ? null : JsonNode.Parse(text);
        }
        catch (JsonException)
        {
            parsed = null;
        }
        if (!response.IsSuccessStatusCode)
        {
            var code = parsed?["error_code"]?.GetValue<int>() ?? (int)response.StatusCode;
            throw new SchemaRegistryException(code, parsed?["message"]?.GetValue<string>() ?? $"{_http.BaseAddress}{path}: HTTP {(int)response.StatusCode} {text}");
        }
        return parsed ?? throw new SchemaRegistryException(50001, $"{_http.BaseAddress}{path}: not JSON: {text}");
    }

    private SchemaRegistryException Unexpected(string what, JsonObject body) => new(50001, $"{_http.BaseAddress}: the answer to {what} lacks a field: {body.ToJsonString()}");

    public void Dispose() => _http.Dispose();
}
