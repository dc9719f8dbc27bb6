using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Herald.Serialization;

namespace Herald.Tests.Serialization;

/// <summary>Only these tests use this type, so what the serializer caches for it is theirs alone.</summary>
public sealed record MeterRead(string MeterId, int ReadingKwh, string? Note);

/// <summary>SystemTextJsonEventSerializer keeps a type's metadata for the serializer that asked
/// last: serializers with other options, used in turn, must never serialize or read with it.</summary>
public class SerializerOptionsTests
{
    private static readonly MeterRead Read = new("m-7", 42, null);

    private static SystemTextJsonEventSerializer CamelCase() => new(new JsonSerializerOptions(JsonSerializerDefaults.Web));

    private static SystemTextJsonEventSerializer SnakeCase() => new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    });

    private const string CamelJson = """{"meterId":"m-7","readingKwh":42,"note":null}""";
    private const string SnakeJson = """{"meter_id":"m-7","reading_kwh":42}""";

    private static string Serialize(SystemTextJsonEventSerializer serializer, MeterRead value)
    {
        var output = new ArrayBufferWriter<byte>();
        serializer.Serialize(value, output);
        return Encoding.UTF8.GetString(output.WrittenSpan);
    }

    [Fact]
    public void Two_serializers_with_different_options_used_in_turn_for_one_type_each_write_and_read_their_own_json()
    {
        var camel = CamelCase();
        var snake = SnakeCase();

        for (var round = 0; round < 3; round++)
        {
            // Each call comes right after the other serializer's, for the same type.
            Assert.Equal(CamelJson, Serialize(camel, Read));
            Assert.Equal(SnakeJson, Serialize(snake, Read));
            Assert.Equal(Read, camel.Deserialize<MeterRead>(Encoding.UTF8.GetBytes(CamelJson)));
            Assert.Equal(Read, snake.Deserialize<MeterRead>(Encoding.UTF8.GetBytes(SnakeJson)));
            Assert.Equal(CamelJson, Serialize(camel, camel.Deserialize<MeterRead>(Encoding.UTF8.GetBytes(Serialize(camel, Read)))));
            Assert.Equal(SnakeJson, Serialize(snake, snake.Deserialize<MeterRead>(Encoding.UTF8.GetBytes(Serialize(snake, Read)))));

            // Reading the other's JSON with one's own names: only the properties both name alike match.
            Assert.Equal(new MeterRead(null!, 0, null), snake.Deserialize<MeterRead>(Encoding.UTF8.GetBytes(CamelJson)));
            Assert.Equal(new MeterRead(null!, 0, null), camel.Deserialize<MeterRead>(Encoding.UTF8.GetBytes(SnakeJson)));
        }
    }

    [Fact]
    public async Task Serializers_with_different_options_used_for_one_type_on_many_threads_at_once_never_use_each_others_metadata()
    {
        var camel = CamelCase();
        var snake = SnakeCase();
        var wrong = 0;
        await Parallel.ForAsync(0, 20_000, new ParallelOptions { MaxDegreeOfParallelism = 4 }, (i, _) =>
        {
            var read = new MeterRead($"m-{i}", i, null);
            var (serializer, expected) = i % 2 == 0
                ? (camel, $$"""{"meterId":"m-{{i}}","readingKwh":{{i}},"note":null}""")
                : (snake, $$"""{"meter_id":"m-{{i}}","reading_kwh":{{i}}}""");
            var written = Serialize(serializer, read);
            if (written != expected || serializer.Deserialize<MeterRead>(Encoding.UTF8.GetBytes(written)) != read) Interlocked.Increment(ref wrong);
            return ValueTask.CompletedTask;
        });
        Assert.Equal(0, wrong);
    }
}
